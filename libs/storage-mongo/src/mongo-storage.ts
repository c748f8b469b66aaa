import { createHash } from 'node:crypto';
import { addAbortSignal, type Readable } from 'node:stream';
import {
  Binary,
  GridFSBucket,
  MongoClient,
  ObjectId,
  type Collection,
  type Db,
  type FindCursor,
  type GridFSBucketWriteStream,
  type GridFSChunk,
  type GridFSFile,
} from 'mongodb';
import { errors, type ModuleErrorOptions } from '@modproxy/errors';
import { sortVersions } from '@modproxy/gomod';
import {
  checkModule,
  checkModuleVersion,
  encodeCatalogToken,
  encodeIndexToken,
  normalizeZipSha256,
  parseCatalogOptions,
  parseIndexOptions,
  type CallOptions,
  type CatalogOptions,
  type CatalogPage,
  type IndexOptions,
  type IndexPage,
  type ModuleStorage,
  type SaveInput,
  type ZipContent,
} from '@modproxy/storage';
import { GridFsZipStream } from './gridfs-zip-stream';
import { isDuplicateKeyError, toMongoStorageError } from './mongo-errors';

export interface MongoStorageOptions {
  /** MongoDB connection string (`mongodb://…` or `mongodb+srv://…`). Not used when `client` is given. */
  uri: string;
  /** Database holding the `versions` collection and the zip bucket. Default `modproxy`. */
  database?: string;
  /** GridFS bucket for zips (collections `<bucketName>.files` and `<bucketName>.chunks`). Default `zips`. */
  bucketName?: string;
  /** A client to use instead of connecting to `uri`; the caller keeps ownership and closes it. */
  client?: MongoClient;
  /** GridFS chunk size. Default 255 KiB (GridFS's own default; well under CosmosDB's 2 MiB document limit). */
  chunkSizeBytes?: number;
  /**
   * Zip files that no version points at are removed once they are older than this; it must be
   * longer than any save takes, or a slow save could lose its zip. Default 1 hour.
   */
  orphanGraceMs?: number;
  /** How long a call waits for a reachable server before failing `unavailable`. Default 10 000 ms. Only for a client made from `uri`. */
  serverSelectionTimeoutMs?: number;
}

export interface OrphanCleanupOptions extends CallOptions {
  /** Only zips whose upload started at least this long ago are touched. Default: the storage's `orphanGraceMs`. */
  graceMs?: number;
}

export interface OrphanCleanupResult {
  /** GridFS files (complete uploads) that no version document referenced. */
  removedFiles: number;
  /** Uploads that stopped before GridFS wrote their file document (chunks only). */
  removedPartialUploads: number;
}

/** One stored module version; `(module, version)` is unique. */
interface VersionDocument {
  module: string;
  version: string;
  info: Binary;
  mod: Binary;
  zipFileId: ObjectId;
  zipSize: number;
  zipSha256: string;
  /** When the version was stored (just before its document was inserted): the index's time. */
  createdAt: Date;
}

/** What a GridFS file of ours carries in `metadata`, so an operator can tell what an orphan was. */
interface ZipFileMetadata {
  module: string;
  version: string;
  /** When the upload began (the file's ObjectId holds the same second). */
  startedAt: Date;
}

const DEFAULT_DATABASE = 'modproxy';
const DEFAULT_BUCKET = 'zips';
const DEFAULT_CHUNK_SIZE = 255 * 1024;
const DEFAULT_ORPHAN_GRACE_MS = 60 * 60 * 1000;
const DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 10_000;
const VERSIONS_COLLECTION = 'versions';
/** How many ids one orphan-cleanup query names in `$in`. */
const CLEANUP_BATCH = 200;

/**
 * Module storage in MongoDB (or a wire-compatible service such as CosmosDB's Mongo API or
 * FerretDB). Version metadata lives in `versions`, one document per version with a unique
 * index on `(module, version)`; zips live in a GridFS bucket and are streamed both ways.
 *
 * A save uploads the zip first and inserts the version document last, so the unique index is
 * the single commit point: a crash or a lost race leaves at most an unreferenced GridFS file,
 * never a visible half version, and {@link MongoStorage.cleanupOrphans} removes those later.
 * Only single-document writes, finds, `distinct`, `findAndModify` and index creation are used:
 * no transactions, change streams or aggregation.
 */
export class MongoStorage implements ModuleStorage {
  private readonly versions: Collection<VersionDocument>;
  private readonly bucket: GridFSBucket;
  private readonly files: Collection<GridFSFile>;
  private readonly chunks: Collection<GridFSChunk>;
  private closed = false;

  private constructor(
    private readonly client: MongoClient,
    private readonly ownsClient: boolean,
    private readonly db: Db,
    bucketName: string,
    private readonly chunkSizeBytes: number,
    private readonly orphanGraceMs: number,
  ) {
    this.versions = db.collection<VersionDocument>(VERSIONS_COLLECTION);
    this.bucket = new GridFSBucket(db, { bucketName, chunkSizeBytes });
    this.files = db.collection<GridFSFile>(`${bucketName}.files`);
    this.chunks = db.collection<GridFSChunk>(`${bucketName}.chunks`);
  }

  /** Connects, creates the indexes it relies on and removes orphaned zips older than the grace period. */
  static async connect(options: MongoStorageOptions): Promise<MongoStorage> {
    const op = 'storage.mongo.connect';
    const database = options.database ?? DEFAULT_DATABASE;
    const bucketName = options.bucketName ?? DEFAULT_BUCKET;
    const chunkSizeBytes = options.chunkSizeBytes ?? DEFAULT_CHUNK_SIZE;
    const orphanGraceMs = options.orphanGraceMs ?? DEFAULT_ORPHAN_GRACE_MS;
    if (!Number.isSafeInteger(chunkSizeBytes) || chunkSizeBytes < 1) {
      throw errors.invalidArgument(op, 'chunkSizeBytes must be a positive integer');
    }
    if (!Number.isFinite(orphanGraceMs) || orphanGraceMs < 0) {
      throw errors.invalidArgument(op, 'orphanGraceMs must be a non-negative number');
    }
    if (options.client === undefined && (typeof options.uri !== 'string' || options.uri === '')) {
      throw errors.invalidArgument(op, 'a MongoDB uri (or a client) is required');
    }

    let client = options.client;
    const ownsClient = client === undefined;
    try {
      client ??= new MongoClient(options.uri, {
        serverSelectionTimeoutMS: options.serverSelectionTimeoutMs ?? DEFAULT_SERVER_SELECTION_TIMEOUT_MS,
      });
      if (ownsClient) await client.connect();
      const storage = new MongoStorage(
        client,
        ownsClient,
        client.db(database),
        bucketName,
        chunkSizeBytes,
        orphanGraceMs,
      );
      await storage.createIndexes();
      await storage.cleanupOrphans();
      return storage;
    } catch (error) {
      if (ownsClient) await client?.close().catch(() => undefined);
      throw toMongoStorageError(error, op, undefined);
    }
  }

  /** Readiness: resolves when the server answers `ping`, else rejects `unavailable`. */
  async ping(options: CallOptions = {}): Promise<void> {
    const op = 'storage.mongo.ping';
    try {
      this.checkUsable(op, options.signal, {});
      await this.db.command({ ping: 1 }, signalOption(options.signal));
    } catch (error) {
      const mapped = toMongoStorageError(error, op, options.signal);
      if (mapped.kind === 'cancelled' || mapped.kind === 'timeout' || mapped.kind === 'failed-precondition')
        throw mapped;
      throw errors.unavailable(op, mapped.message, { cause: error });
    }
  }

  async exists(module: string, version: string, options: CallOptions = {}): Promise<boolean> {
    const op = 'storage.mongo.exists';
    const refs = { module, version };
    try {
      checkModuleVersion(op, module, version);
      this.checkUsable(op, options.signal, refs);
      const doc = await this.versions.findOne(
        { module, version },
        { projection: { _id: 1 }, ...signalOption(options.signal) },
      );
      return doc !== null;
    } catch (error) {
      throw toMongoStorageError(error, op, options.signal, refs);
    }
  }

  async info(module: string, version: string, options: CallOptions = {}): Promise<Buffer> {
    return this.readBytes('storage.mongo.info', 'info', module, version, options);
  }

  async mod(module: string, version: string, options: CallOptions = {}): Promise<Buffer> {
    return this.readBytes('storage.mongo.mod', 'mod', module, version, options);
  }

  async zip(module: string, version: string, options: CallOptions = {}): Promise<ZipContent> {
    const op = 'storage.mongo.zip';
    const refs = { module, version };
    const { signal } = options;
    try {
      checkModuleVersion(op, module, version);
      this.checkUsable(op, signal, refs);
      const doc = await this.versions.findOne(
        { module, version },
        { projection: { zipFileId: 1, zipSize: 1, zipSha256: 1 }, ...signalOption(signal) },
      );
      if (doc === null) throw notFound(op, refs);
      const stream = new GridFsZipStream({
        chunks: this.chunks,
        fileId: doc.zipFileId,
        size: doc.zipSize,
        refs,
        ...(signal ? { signal } : {}),
      });
      if (signal) addAbortSignal(signal, stream);
      // The digest checked at save time: a replica's cache checks its copy against it.
      return { size: doc.zipSize, stream, ...(doc.zipSha256 ? { sha256: doc.zipSha256 } : {}) };
    } catch (error) {
      throw toMongoStorageError(error, op, signal, refs);
    }
  }

  async save(input: SaveInput, options: CallOptions = {}): Promise<void> {
    const op = 'storage.mongo.save';
    const { module, version } = input;
    const { signal } = options;
    const refs = { module, version };
    let fileId: ObjectId | undefined;
    try {
      checkModuleVersion(op, module, version);
      const expectedSha256 = normalizeZipSha256(op, input.zipSha256, refs);
      if (!Buffer.isBuffer(input.info) || !Buffer.isBuffer(input.mod)) {
        throw errors.invalidArgument(op, 'info and mod must be Buffers', refs);
      }
      this.checkUsable(op, signal, refs);
      // Cheap early answer; the unique index still decides races below.
      if (
        await this.versions.findOne({ module, version }, { projection: { _id: 1 }, ...signalOption(signal) })
      ) {
        throw alreadyStored(op, refs);
      }

      fileId = new ObjectId();
      const metadata: ZipFileMetadata = { module, version, startedAt: new Date() };
      const upload = this.bucket.openUploadStreamWithId(fileId, `${module}@${version}.zip`, {
        chunkSizeBytes: this.chunkSizeBytes,
        metadata,
      });
      const { size, sha256 } = await uploadZip(op, input.zip, upload, expectedSha256, signal, refs);
      if (upload.gridFSFile?.length !== size) {
        throw errors.internal(
          op,
          `GridFS stored ${upload.gridFSFile?.length} bytes of a ${size}-byte zip`,
          refs,
        );
      }
      this.checkUsable(op, signal, refs);

      const doc: VersionDocument = {
        module,
        version,
        info: new Binary(Buffer.from(input.info)),
        mod: new Binary(Buffer.from(input.mod)),
        zipFileId: fileId,
        zipSize: size,
        zipSha256: sha256,
        createdAt: new Date(),
      };
      const committedFileId = fileId;
      try {
        await this.versions.insertOne(doc);
      } catch (error) {
        // A retried insert can meet its own first attempt, and a lost reply hides whether it landed: ask.
        const holder = await this.zipHolder(module, version).catch(() => 'unknown' as const);
        if (holder === 'unknown') {
          // Never remove a zip that may be committed; cleanupOrphans checks references before it removes anything.
          fileId = undefined;
          throw error;
        }
        if (!holder?.equals(committedFileId)) {
          throw isDuplicateKeyError(error) ? alreadyStored(op, refs, error) : error;
        }
      }
      fileId = undefined;
      await this.confirmZipSurvived(op, committedFileId, refs);
    } catch (error) {
      if (!input.zip.destroyed) input.zip.destroy();
      // Best effort: what this fails to remove, cleanupOrphans removes after the grace period.
      if (fileId !== undefined) await this.removeZip(fileId).catch(() => undefined);
      throw toMongoStorageError(error, op, signal, refs);
    }
  }

  async list(module: string, options: CallOptions = {}): Promise<string[]> {
    const op = 'storage.mongo.list';
    try {
      checkModule(op, module);
      this.checkUsable(op, options.signal, { module });
      // Equality on `module`: `a/b` never matches `a/b/v2` or `a/b-other`.
      const docs = await this.versions
        .find({ module }, { projection: { _id: 0, version: 1 }, ...signalOption(options.signal) })
        .toArray();
      return sortVersions(docs.map((d) => d.version));
    } catch (error) {
      throw toMongoStorageError(error, op, options.signal, { module });
    }
  }

  async delete(module: string, version: string, options: CallOptions = {}): Promise<void> {
    const op = 'storage.mongo.delete';
    const refs = { module, version };
    try {
      checkModuleVersion(op, module, version);
      this.checkUsable(op, options.signal, refs);
      // Metadata first: from this moment the version is gone for readers, and the zip is an orphan at worst.
      // No projection: FerretDB v1 does not implement `fields` in findAndModify, and the document is small.
      const doc = await this.versions.findOneAndDelete({ module, version });
      if (doc === null) throw notFound(op, refs);
      // A failure here leaves an unreferenced zip for cleanupOrphans; the delete itself has happened.
      await this.removeZip(doc.zipFileId).catch(() => undefined);
    } catch (error) {
      throw toMongoStorageError(error, op, options.signal, refs);
    }
  }

  async catalog(options: CatalogOptions): Promise<CatalogPage> {
    const op = 'storage.mongo.catalog';
    const { signal } = options;
    try {
      const { pageSize, after } = parseCatalogOptions(op, options);
      this.checkUsable(op, signal, {});
      // Keyset paging on the (module, version) index: resume strictly after the last entry handed out.
      const filter = after
        ? {
            $or: [
              { module: { $gt: after.module } },
              { module: after.module, version: { $gt: after.version } },
            ],
          }
        : {};
      const docs = await this.versions
        .find(filter, { projection: { _id: 0, module: 1, version: 1 }, ...signalOption(signal) })
        .sort({ module: 1, version: 1 })
        .limit(pageSize + 1)
        .toArray();
      const entries = docs.slice(0, pageSize).map((d) => ({ module: d.module, version: d.version }));
      const last = entries[entries.length - 1];
      return docs.length > pageSize && last
        ? { entries, nextPageToken: encodeCatalogToken(last) }
        : { entries };
    } catch (error) {
      throw toMongoStorageError(error, op, signal);
    }
  }

  async index(options: IndexOptions): Promise<IndexPage> {
    const op = 'storage.mongo.index';
    const { signal } = options;
    try {
      const { limit, since, after } = parseIndexOptions(op, options);
      this.checkUsable(op, signal, {});
      // Keyset paging on the (createdAt, module, version) index, as the catalog pages on its own.
      const clauses: Array<Record<string, unknown>> = [];
      if (since) clauses.push({ createdAt: { $gte: since } });
      if (after) {
        clauses.push({
          $or: [
            { createdAt: { $gt: after.storedAt } },
            { createdAt: after.storedAt, module: { $gt: after.module } },
            { createdAt: after.storedAt, module: after.module, version: { $gt: after.version } },
          ],
        });
      }
      const filter = clauses.length === 0 ? {} : clauses.length === 1 ? clauses[0] : { $and: clauses };
      const docs = await this.versions
        .find(filter ?? {}, {
          projection: { _id: 0, module: 1, version: 1, createdAt: 1 },
          ...signalOption(signal),
        })
        .sort({ createdAt: 1, module: 1, version: 1 })
        .limit(limit + 1)
        .toArray();
      const entries = docs
        .slice(0, limit)
        .map((d) => ({ module: d.module, version: d.version, storedAt: new Date(d.createdAt.getTime()) }));
      const last = entries[entries.length - 1];
      return docs.length > limit && last ? { entries, nextPageToken: encodeIndexToken(last) } : { entries };
    } catch (error) {
      throw toMongoStorageError(error, op, signal);
    }
  }

  /**
   * Removes zips left by saves that never committed (a crash, a lost connection, a lost race
   * whose own cleanup failed): GridFS files no version document references, and chunks whose
   * upload stopped before GridFS wrote the file document. Only uploads that started at least
   * `graceMs` ago are touched, so saves in flight keep their zips.
   */
  async cleanupOrphans(options: OrphanCleanupOptions = {}): Promise<OrphanCleanupResult> {
    const op = 'storage.mongo.cleanupOrphans';
    const { signal } = options;
    const graceMs = options.graceMs ?? this.orphanGraceMs;
    try {
      if (!Number.isFinite(graceMs) || graceMs < 0)
        throw errors.invalidArgument(op, 'graceMs must be a non-negative number');
      this.checkUsable(op, signal, {});
      // File ids are ObjectIds made when the upload began; ids below this one began at or before the cutoff second.
      const cutoff = ObjectId.createFromTime(Math.floor((Date.now() - graceMs) / 1000) + 1);

      let removedFiles = 0;
      const candidates = this.files.find(
        { _id: { $lt: cutoff } },
        { projection: { _id: 1 }, ...signalOption(signal) },
      );
      try {
        for (let batch = await nextBatch(candidates); batch.length > 0; batch = await nextBatch(candidates)) {
          const referenced = await this.versions
            .find(
              { zipFileId: { $in: batch } },
              { projection: { _id: 0, zipFileId: 1 }, ...signalOption(signal) },
            )
            .toArray();
          const keep = new Set(referenced.map((d) => d.zipFileId.toHexString()));
          const orphans = batch.filter((id) => !keep.has(id.toHexString()));
          if (orphans.length > 0) {
            await this.files.deleteMany({ _id: { $in: orphans } });
            await this.chunks.deleteMany({ files_id: { $in: orphans } });
            removedFiles += orphans.length;
          }
        }
      } finally {
        await candidates.close();
      }

      let removedPartialUploads = 0;
      const chunkOwners = (await this.chunks.distinct('files_id', {
        files_id: { $lt: cutoff },
      })) as unknown[];
      const ownerIds = chunkOwners.filter((id): id is ObjectId => id instanceof ObjectId);
      for (let i = 0; i < ownerIds.length; i += CLEANUP_BATCH) {
        this.checkUsable(op, signal, {});
        const batch = ownerIds.slice(i, i + CLEANUP_BATCH);
        const present = await this.files
          .find({ _id: { $in: batch } }, { projection: { _id: 1 }, ...signalOption(signal) })
          .toArray();
        const complete = new Set(present.map((f) => f._id.toHexString()));
        const partial = batch.filter((id) => !complete.has(id.toHexString()));
        if (partial.length > 0) {
          await this.chunks.deleteMany({ files_id: { $in: partial } });
          removedPartialUploads += partial.length;
        }
      }
      return { removedFiles, removedPartialUploads };
    } catch (error) {
      throw toMongoStorageError(error, op, signal);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsClient) await this.client.close();
  }

  private async createIndexes(): Promise<void> {
    await this.versions.createIndex(
      { module: 1, version: 1 },
      { unique: true, name: 'module_version_unique' },
    );
    // Orphan cleanup asks which of a batch of zips are referenced.
    await this.versions.createIndex({ zipFileId: 1 }, { name: 'zip_file_id' });
    // The index feed pages by stored time.
    await this.versions.createIndex({ createdAt: 1, module: 1, version: 1 }, { name: 'stored_at' });
  }

  private async readBytes(
    op: string,
    field: 'info' | 'mod',
    module: string,
    version: string,
    options: CallOptions,
  ): Promise<Buffer> {
    const refs = { module, version };
    try {
      checkModuleVersion(op, module, version);
      this.checkUsable(op, options.signal, refs);
      const doc = await this.versions.findOne(
        { module, version },
        { projection: { _id: 0, [field]: 1 }, ...signalOption(options.signal) },
      );
      const value: unknown = doc?.[field];
      if (doc === null) throw notFound(op, refs);
      if (!(value instanceof Binary)) throw errors.internal(op, `stored ${field} is not binary`, refs);
      // A fresh copy: callers may scribble on what they get.
      return Buffer.from(value.buffer.subarray(0, value.position));
    } catch (error) {
      throw toMongoStorageError(error, op, options.signal, refs);
    }
  }

  /**
   * After the commit, the zip must still be there: an orphan sweep run with a grace shorter
   * than this save took may have removed it between upload and insert. Then the version is
   * withdrawn again rather than left pointing at nothing.
   */
  private async confirmZipSurvived(op: string, fileId: ObjectId, refs: ModuleErrorOptions): Promise<void> {
    if (await this.files.findOne({ _id: fileId }, { projection: { _id: 1 } })) return;
    await this.versions.deleteOne({ zipFileId: fileId });
    throw errors.unavailable(
      op,
      'the zip was removed by an orphan cleanup while the save ran; retry the save',
      refs,
    );
  }

  /** The zip the stored version points at, or undefined when the version is not stored. */
  private async zipHolder(module: string, version: string): Promise<ObjectId | undefined> {
    const doc = await this.versions.findOne({ module, version }, { projection: { _id: 0, zipFileId: 1 } });
    return doc?.zipFileId;
  }

  private async removeZip(fileId: ObjectId): Promise<void> {
    // Not bucket.delete(): it throws when the upload never wrote a file document, which is the usual case here.
    await this.files.deleteOne({ _id: fileId });
    await this.chunks.deleteMany({ files_id: fileId });
  }

  private checkUsable(op: string, signal: AbortSignal | undefined, refs: ModuleErrorOptions): void {
    if (signal?.aborted) throw toMongoStorageError(signal.reason, op, signal, refs);
    if (this.closed) throw errors.failedPrecondition(op, 'the MongoDB storage is closed', refs);
  }
}

function signalOption(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}

function notFound(op: string, refs: ModuleErrorOptions) {
  return errors.notFound(op, `${refs.module}@${refs.version} is not stored`, refs);
}

function alreadyStored(op: string, refs: ModuleErrorOptions, cause?: unknown) {
  return errors.alreadyExists(op, `${refs.module}@${refs.version} is already stored`, { ...refs, cause });
}

async function nextBatch(cursor: FindCursor<GridFSFile>): Promise<ObjectId[]> {
  const batch: ObjectId[] = [];
  while (batch.length < CLEANUP_BATCH) {
    const doc = await cursor.next();
    if (doc === null) break;
    batch.push(doc._id);
  }
  return batch;
}

/**
 * Streams the zip into GridFS, hashing and counting it on the way. Each write is awaited
 * (GridFS answers once a chunk it flushed is stored), so when this fails no chunk insert is
 * still in flight and the caller's cleanup really removes every chunk. A digest mismatch is
 * found before the stream is ended, so GridFS never writes a file document for a rejected zip.
 */
async function uploadZip(
  op: string,
  zip: Readable,
  upload: GridFSBucketWriteStream,
  expectedSha256: string | undefined,
  signal: AbortSignal | undefined,
  refs: ModuleErrorOptions,
): Promise<{ size: number; sha256: string }> {
  // Failures also come back through the write and end callbacks; this keeps the event from crashing the process.
  upload.on('error', () => undefined);
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of signal ? addAbortSignal(signal, zip) : zip) {
      const bytes = toBytes(op, chunk, refs);
      hash.update(bytes);
      size += bytes.length;
      await new Promise<void>((resolve, reject) => {
        upload.write(bytes, (error) => (error ? reject(error) : resolve()));
      });
    }
    const sha256 = hash.digest('hex');
    if (expectedSha256 !== undefined && sha256 !== expectedSha256) {
      throw errors.invalidArgument(
        op,
        `zip SHA-256 ${sha256} (${size} bytes) does not match the expected ${expectedSha256}`,
        refs,
      );
    }
    await new Promise<void>((resolve, reject) => {
      upload.end((error?: Error | null) => (error ? reject(error) : resolve()));
    });
    return { size, sha256 };
  } catch (error) {
    upload.destroy();
    throw error;
  }
}

function toBytes(op: string, chunk: unknown, refs: ModuleErrorOptions): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk);
  throw errors.invalidArgument(op, 'zip stream must yield bytes', refs);
}
