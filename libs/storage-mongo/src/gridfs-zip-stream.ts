import { Readable } from 'node:stream';
import {
  Binary,
  MongoServerError,
  type Collection,
  type FindCursor,
  type GridFSChunk,
  type ObjectId,
} from 'mongodb';
import { errors, type ModuleErrorOptions } from '@modproxy/errors';
import { toMongoStorageError } from './mongo-errors';

export interface GridFsZipStreamOptions {
  /** The bucket's chunks collection. */
  chunks: Collection<GridFSChunk>;
  /** The GridFS file holding the zip. */
  fileId: ObjectId;
  /** The zip's size from its version document: more or fewer bytes fail the stream. */
  size: number;
  /** Module and version, for the errors. */
  refs: ModuleErrorOptions;
  /** The caller's signal: errors after it fired keep its meaning (cancelled or timeout). */
  signal?: AbortSignal;
  /** Chunks per round trip (the cursor's batch size). Default 4: about 1 MiB with the default chunk size. */
  batchSize?: number;
  /** Times a cursor the server dropped is reopened, from the next chunk, before the stream fails; reset by every chunk read. Default 2. */
  maxResumes?: number;
}

const OP = 'storage.mongo.zip';
const DEFAULT_BATCH_SIZE = 4;
const DEFAULT_MAX_RESUMES = 2;
/** The server no longer has the cursor: CursorNotFound (an idle timeout, killCursors), CursorKilled, QueryPlanKilled. */
const LOST_CURSOR_CODES = new Set([43, 175, 237]);

/**
 * One zip's GridFS chunks in order, through one cursor (`files_id`, sorted by `n`, the index
 * GridFS keeps) with a small batch size. The driver's own download stream asks for batches of
 * 100 chunks and more (25 MiB and up per reader), so memory would grow with concurrent
 * downloads times zip size; and one query per few chunks costs a query plan (on FerretDB, a
 * scan) per round trip. Here a reader holds at most one batch plus one chunk in the stream's
 * buffer, and the next batch is asked for only when the reader has taken the last: the cursor
 * is read from `_read`, so a slow client slows the cursor down instead of filling memory.
 *
 * A slow reader can outlive the cursor (MongoDB drops cursors idle for 10 minutes): then a new
 * one starts at the next chunk number. The query runs on first read, so nothing is fetched
 * for a caller that destroys the stream unread. A missing chunk, or more or fewer bytes than
 * the version document says, fails the stream rather than serve a changed zip.
 */
export class GridFsZipStream extends Readable {
  private readonly batchSize: number;
  private readonly maxResumes: number;
  private cursor: FindCursor<GridFSChunk> | undefined;
  /** The chunk number the zip continues with. */
  private nextChunk = 0;
  private bytes = 0;
  private resumes = 0;

  constructor(private readonly options: GridFsZipStreamOptions) {
    super();
    this.batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    this.maxResumes = options.maxResumes ?? DEFAULT_MAX_RESUMES;
  }

  override _read(): void {
    // Readable calls _read again only after a push: one pull at a time.
    void this.pull();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const cursor = this.cursor;
    this.cursor = undefined;
    if (!cursor) {
      callback(error);
      return;
    }
    cursor.close().then(
      () => callback(error),
      () => callback(error),
    );
  }

  private async pull(): Promise<void> {
    try {
      const chunk = await this.nextChunkDocument();
      if (this.destroyed) return;
      if (chunk === null) {
        await this.finish();
        return;
      }
      if (chunk.n !== this.nextChunk) {
        throw errors.internal(OP, `zip chunk ${this.nextChunk} is missing`, this.options.refs);
      }
      this.nextChunk += 1;
      this.resumes = 0;
      const data = chunkBytes(chunk.data, this.options.refs);
      this.bytes += data.length;
      if (this.bytes > this.options.size) throw this.sizeMismatch();
      this.push(data);
    } catch (error) {
      if (!this.destroyed)
        this.destroy(toMongoStorageError(error, OP, this.options.signal, this.options.refs));
    }
  }

  /** The next chunk, or null after the last; a cursor the server dropped is reopened where it stopped. */
  private async nextChunkDocument(): Promise<GridFSChunk | null> {
    for (;;) {
      // Destroyed meanwhile: _destroy closed the cursor, and no new one may open.
      if (this.destroyed) return null;
      const cursor = (this.cursor ??= this.open());
      try {
        return await cursor.tryNext();
      } catch (error) {
        if (!isLostCursor(error) || this.resumes >= this.maxResumes) throw error;
        this.resumes += 1;
        if (this.cursor === cursor) this.cursor = undefined;
        await cursor.close().catch(() => undefined);
      }
    }
  }

  private open(): FindCursor<GridFSChunk> {
    const { chunks, fileId } = this.options;
    const filter =
      this.nextChunk === 0 ? { files_id: fileId } : { files_id: fileId, n: { $gte: this.nextChunk } };
    return chunks.find(filter, { sort: { n: 1 }, batchSize: this.batchSize });
  }

  private async finish(): Promise<void> {
    const cursor = this.cursor;
    this.cursor = undefined;
    await cursor?.close();
    if (this.bytes !== this.options.size) throw this.sizeMismatch();
    this.push(null);
  }

  private sizeMismatch() {
    return errors.internal(
      OP,
      `zip has ${this.bytes} bytes${this.bytes > this.options.size ? ' or more' : ''}, ${this.options.size} expected`,
      this.options.refs,
    );
  }
}

/**
 * The chunk's bytes as a view, not a copy: it shares the batch's reply buffer, which the driver
 * allocated for that reply alone. The driver hands `data` over as a BSON Binary, whatever its type says.
 */
function chunkBytes(data: unknown, refs: ModuleErrorOptions): Buffer {
  if (data instanceof Binary) return Buffer.from(data.buffer.buffer, data.buffer.byteOffset, data.position);
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw errors.internal(OP, 'a zip chunk holds no binary data', refs);
}

function isLostCursor(error: unknown): boolean {
  return (
    error instanceof MongoServerError && typeof error.code === 'number' && LOST_CURSOR_CODES.has(error.code)
  );
}
