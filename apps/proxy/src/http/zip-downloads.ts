import type { ServerResponse } from 'node:http';
import { Counter, type Logger, type Registry } from '@modproxy/observability';
import { isRecyclingReadable, type ZipContent } from '@modproxy/storage';

export interface ZipDownloadsOptions {
  logger: Logger;
  /** Where `modproxy_zip_downloads_interrupted_total` is registered. */
  registry: Registry;
}

/**
 * Streams stored zips to clients and accounts for the ones that end early. Once the headers
 * are out, a failure can only cut the download short (the client sees fewer bytes than the
 * Content-Length), so it is logged and counted here, where the module, the version and the
 * bytes sent are known. A client that went away is counted apart and not logged as a failure.
 */
export class ZipDownloads {
  private readonly logger: Logger;
  private readonly interrupted: Counter<'cause'>;

  constructor(options: ZipDownloadsOptions) {
    this.logger = options.logger;
    this.interrupted = new Counter({
      name: 'modproxy_zip_downloads_interrupted_total',
      help: 'zip downloads that ended before their last byte, by cause: storage (the stored zip failed mid-stream) or client (the client went away)',
      labelNames: ['cause'] as const,
      registers: [options.registry],
    });
    // Both series exist from the start, so a rate over them is defined before the first failure.
    this.interrupted.inc({ cause: 'storage' }, 0);
    this.interrupted.inc({ cause: 'client' }, 0);
  }

  /**
   * Sends `zip` as the body of `res`, whose headers are set but not sent. Throws only when the
   * zip fails before its first byte, while the error handler can still answer with a status.
   *
   * A pump of its own rather than `pipeline`: pipeline would destroy the response on a failure
   * before the first byte, when a status can still be sent, and a Transform to count bytes is a
   * stream hop per chunk. Backpressure: the zip pauses whenever the socket's buffer is full and
   * resumes on `drain`, so a slow client holds about one read (ZIP_READ_BYTES) in memory; a disk
   * zip gets its chunks back once written (RecyclingReadable), so a fast one allocates nothing.
   */
  send(res: ServerResponse, zip: ZipContent, module: string, version: string): Promise<void> {
    const source = zip.stream;
    // Chunks the socket has written go back to a stream that reads into them again.
    const recycling = isRecyclingReadable(source) ? source : undefined;
    return new Promise<void>((resolve, reject) => {
      let sent = 0;
      const onData = (chunk: Buffer) => {
        sent += chunk.length;
        const written = recycling
          ? res.write(chunk, (error) => {
              if (!error) recycling.recycle(chunk);
            })
          : res.write(chunk);
        if (!written) source.pause();
      };
      const onDrain = () => source.resume();
      const onEnd = () => res.end();
      const onFinish = () => {
        done();
        resolve();
      };
      const onClose = () => {
        if (res.writableFinished) return;
        done();
        source.destroy();
        this.interrupted.inc({ cause: 'client' });
        this.logger.debug(
          { module, version, bytesSent: sent, size: zip.size },
          'zip download: the client went away',
        );
        resolve();
      };
      const onError = (error: Error) => {
        done();
        if (!res.headersSent) return reject(error);
        this.interrupted.inc({ cause: 'storage' });
        this.logger.warn(
          { module, version, bytesSent: sent, size: zip.size, reason: error.message },
          'zip download cut short: the stored zip failed after the headers were sent',
        );
        res.destroy();
        resolve();
      };
      const done = () => {
        source.off('data', onData);
        source.off('end', onEnd);
        source.off('error', onError);
        // A stream torn down later (the request's abort signal) must not throw unheard.
        source.on('error', ignore);
        res.off('drain', onDrain);
        res.off('finish', onFinish);
        res.off('close', onClose);
      };
      source.on('data', onData);
      source.once('end', onEnd);
      source.once('error', onError);
      res.on('drain', onDrain);
      res.once('finish', onFinish);
      res.once('close', onClose);
    });
  }
}

function ignore(): void {}
