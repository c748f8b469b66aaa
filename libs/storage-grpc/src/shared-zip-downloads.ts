import { errors } from '@modproxy/errors';
import type { ZipContent } from '@modproxy/storage';
import { ZipSpool } from './zip-spool';

/** One download from storage; destroying its stream before the end stops it. */
export type StartZipDownload = () => Promise<ZipContent>;

/** One download and the callers reading it. */
class SharedZipDownload {
  readers = 0;
  settled = false;
  /** Resolves once the spool exists and the download started, with the zip's size. */
  readonly started: Promise<{ spool: ZipSpool; size: number; sha256?: string }>;
  private content: ZipContent | undefined;
  private spool: ZipSpool | undefined;
  private stopped = false;

  constructor(
    start: StartZipDownload,
    spoolDir: string | undefined,
    private readonly onSettled: () => void,
  ) {
    this.started = (async () => {
      const spool = await ZipSpool.create(spoolDir).catch((error: unknown) => {
        throw errors.internal('storage.grpc.zip', 'the zip could not be spooled for its readers', {
          detail: error instanceof Error ? error.message : String(error),
          cause: error,
        });
      });
      this.spool = spool;
      try {
        const content = await start();
        this.content = content;
        if (this.stopped) content.stream.destroy();
        void this.pump(content, spool);
        return {
          spool,
          size: content.size,
          ...(content.sha256 === undefined ? {} : { sha256: content.sha256 }),
        };
      } catch (error) {
        this.settle();
        throw error;
      }
    })();
    this.started.catch(() => this.settle());
  }

  /** Nobody reads any more: stop downloading (a reader that left cannot come back). */
  stop(): void {
    this.stopped = true;
    this.content?.stream.destroy();
  }

  /** The spool goes once the download is over and its last reader has left. */
  release(): void {
    this.readers -= 1;
    if (this.readers > 0) return;
    if (this.settled) this.spool?.close();
    else this.stop();
  }

  private async pump(content: ZipContent, spool: ZipSpool): Promise<void> {
    try {
      for await (const chunk of content.stream) await spool.append(chunk as Buffer);
      spool.finish();
    } catch (error) {
      spool.fail(error as Error);
    }
    this.settle();
    if (this.readers === 0) spool.close();
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.onSettled();
  }
}

/**
 * Concurrent reads of one zip share one download: the first caller starts it, later callers
 * join and read the same bytes from a spool file, from the first byte and each at its own
 * pace. A cold burst of a hundred clients for one zip then costs storage one read per proxy
 * replica, not a hundred (a hundred concurrent reads of one large zip stalled a MongoDB-wire
 * backend until the downloads timed out). The download stops when its last reader leaves
 * before the end; once it is over, the next caller starts a new one.
 */
export class SharedZipDownloads {
  private readonly downloads = new Map<string, SharedZipDownload>();

  constructor(private readonly spoolDir?: string) {}

  /**
   * Reads of the same `key` at the same time share one `start()`. A caller's `signal` ends
   * only its own wait or reader (with `aborted(signal)`), never the download of the others.
   */
  async open(
    key: string,
    start: StartZipDownload,
    signal: AbortSignal | undefined,
    aborted: (signal: AbortSignal) => Error,
  ): Promise<ZipContent> {
    if (signal?.aborted) throw aborted(signal);
    let download = this.downloads.get(key);
    if (!download) {
      const created = new SharedZipDownload(start, this.spoolDir, () => {
        if (this.downloads.get(key) === created) this.downloads.delete(key);
      });
      download = created;
      this.downloads.set(key, created);
    }
    const joined = download;
    joined.readers += 1;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (this.downloads.get(key) === joined && joined.readers === 1 && !joined.settled) {
        // The last reader leaves early: the next caller must not join a stopped download.
        this.downloads.delete(key);
      }
      joined.release();
    };
    let onAbort: (() => void) | undefined;
    try {
      const { spool, size, sha256 } = await new Promise<{ spool: ZipSpool; size: number; sha256?: string }>(
        (resolve, reject) => {
          onAbort = () => reject(aborted(signal as AbortSignal));
          signal?.addEventListener('abort', onAbort, { once: true });
          joined.started.then(resolve, reject);
        },
      );
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      const stream = spool.reader(() => {
        if (onAbort) signal?.removeEventListener('abort', onAbort);
        release();
      });
      onAbort = () => stream.destroy(aborted(signal as AbortSignal));
      signal?.addEventListener('abort', onAbort, { once: true });
      return { size, stream, ...(sha256 === undefined ? {} : { sha256 }) };
    } catch (error) {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      release();
      throw error;
    }
  }
}
