import { Transform, type TransformCallback } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import type { Response } from 'express';
import { Counter, type Logger, type Registry } from '@modproxy/observability';
import type { ZipContent } from '@modproxy/storage';

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
   */
  async send(res: Response, zip: ZipContent, module: string, version: string): Promise<void> {
    let sent = 0;
    let clientLeft = false;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
        sent += chunk.length;
        done(null, chunk);
      },
    });
    // Not `pipeline(zip, counter, res)`: it would destroy the response on a failure before the
    // first byte, when a status can still be sent. So the response is fed by `pipe`, and a
    // client that goes away ends the zip stream from here.
    const onClose = (): void => {
      if (res.writableFinished) return;
      clientLeft = true;
      zip.stream.destroy();
    };
    res.once('close', onClose);
    counter.pipe(res);
    try {
      await pipeline(zip.stream, counter);
      await finished(res);
    } catch (error) {
      if (clientLeft) {
        this.interrupted.inc({ cause: 'client' });
        this.logger.debug(
          { module, version, bytesSent: sent, size: zip.size },
          'zip download: the client went away',
        );
        return;
      }
      if (!res.headersSent) {
        res.off('close', onClose);
        counter.unpipe(res);
        throw error;
      }
      this.interrupted.inc({ cause: 'storage' });
      this.logger.warn(
        { module, version, bytesSent: sent, size: zip.size, reason: errorMessage(error) },
        'zip download cut short: the stored zip failed after the headers were sent',
      );
      res.destroy();
    }
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
