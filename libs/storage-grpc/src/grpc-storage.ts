import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  type ChannelOptions,
  type ClientWritableStream,
  type Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import { storageV1 } from '@modproxy/contracts';
import {
  abortedError,
  errors,
  toModuleError,
  type ModuleError,
  type ModuleErrorOptions,
} from '@modproxy/errors';
import {
  bearerMetadata,
  callUnary,
  grpcCallFailure,
  grpcChannelCredentials,
  type GrpcClientTls,
  type UnaryInvoke,
} from '@modproxy/grpc';
import type {
  CallOptions,
  CatalogOptions,
  CatalogPage,
  IndexOptions,
  IndexPage,
  ModuleStorage,
  SaveInput,
  ZipContent,
} from '@modproxy/storage';
import { MessageWriter } from './backpressure';
import { SharedZipDownloads } from './shared-zip-downloads';
import { asBuffer, DEFAULT_MAX_MESSAGE_BYTES, ZIP_CHUNK_BYTES, zipChunks } from './zip-chunks';

export interface GrpcStorageOptions {
  /** Address of the storage service, `host:port` (e.g. `127.0.0.1:7070`, `[::1]:7070`). */
  url: string;
  /** Shared token sent as `authorization: Bearer <token>` on every call. Default: none. */
  token?: string;
  /**
   * TLS: an object connects with TLS, trusting `ca` when given and the system roots
   * otherwise; `false` connects in plaintext. Default: `false`.
   */
  tls?: GrpcClientTls;
  /**
   * Deadline in ms of every metadata call (exists, info, mod, list, delete, catalog), of the
   * first message of a zip download and of the answer to a finished upload. Default: 30000.
   */
  deadlineMs?: number;
  /**
   * Zip transfers have no overall deadline: a large zip on a slow link may take minutes.
   * Instead a download fails with `timeout` when no message arrives for this long while the
   * reader is waiting for one, and an upload when the server takes no message for this long.
   * Time the caller spends not reading (or not producing) zip bytes does not count.
   * Default: 60000.
   */
  zipIdleTimeoutMs?: number;
  /** Largest message sent or received, in bytes. Default: 32 MiB (a go.mod may be 16 MiB). */
  maxMessageBytes?: number;
  /**
   * Where zips being downloaded are spooled (unlinked files) so that concurrent readers of one
   * zip share one download. Default: the OS temp dir.
   */
  zipSpoolDir?: string;
  /** Further grpc-js channel options; they override the ones this class sets. Default: none. */
  channelOptions?: ChannelOptions;
}

type GetZipResponse = storageV1.GetZipResponse;
type SaveRequest = storageV1.SaveRequest;

/** The largest page size a request can carry: the field is an int32. */
const MAX_INT32 = 2 ** 31 - 1;

/** Values that protobuf could not even encode are rejected here, with the kind the server would use. */
function checkText(op: string, name: string, value: unknown, refs: ModuleErrorOptions): void {
  if (typeof value !== 'string') throw errors.invalidArgument(op, `${name} must be a string`, refs);
}

function checkBytes(op: string, name: string, value: unknown, refs: ModuleErrorOptions): void {
  if (!(value instanceof Uint8Array)) throw errors.invalidArgument(op, `${name} must be bytes`, refs);
}

/**
 * ModuleStorage over gRPC: every call goes to a `modproxy.storage.v1.StorageService`
 * (see storage-service.ts). Zips stream both ways in chunks of at most 1 MiB with
 * backpressure, so memory does not grow with zip size; a caller's AbortSignal cancels the
 * call, and failures come back as the ModuleError kinds the server reported.
 */
export class GrpcStorage implements ModuleStorage {
  private readonly client: storageV1.StorageServiceClient;
  private readonly token: string | undefined;
  private readonly deadlineMs: number;
  private readonly zipIdleTimeoutMs: number;
  private readonly sharedZips: SharedZipDownloads;

  constructor(options: GrpcStorageOptions) {
    this.sharedZips = new SharedZipDownloads(options.zipSpoolDir);
    this.token = options.token;
    this.deadlineMs = options.deadlineMs ?? 30_000;
    this.zipIdleTimeoutMs = options.zipIdleTimeoutMs ?? 60_000;
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    const channelCredentials = grpcChannelCredentials(options.tls);
    this.client = new storageV1.StorageServiceClient(options.url, channelCredentials, {
      'grpc.max_receive_message_length': maxMessageBytes,
      'grpc.max_send_message_length': maxMessageBytes,
      // Finds a dead connection (a peer gone without a FIN) within about a minute and a half.
      'grpc.keepalive_time_ms': 60_000,
      'grpc.keepalive_timeout_ms': 20_000,
      ...options.channelOptions,
    });
  }

  async exists(module: string, version: string, options: CallOptions = {}): Promise<boolean> {
    const op = 'storage.grpc.exists';
    const refs = this.checkRef(op, module, version);
    const response = await this.unary<storageV1.StatResponse>(
      op,
      refs,
      options.signal,
      (metadata, call, callback) => this.client.stat({ module, version }, metadata, call, callback),
    );
    return response.exists;
  }

  async info(module: string, version: string, options: CallOptions = {}): Promise<Buffer> {
    const op = 'storage.grpc.info';
    const refs = this.checkRef(op, module, version);
    const response = await this.unary<storageV1.GetInfoResponse>(
      op,
      refs,
      options.signal,
      (metadata, call, callback) => this.client.getInfo({ module, version }, metadata, call, callback),
    );
    return response.info;
  }

  async mod(module: string, version: string, options: CallOptions = {}): Promise<Buffer> {
    const op = 'storage.grpc.mod';
    const refs = this.checkRef(op, module, version);
    const response = await this.unary<storageV1.GetModResponse>(
      op,
      refs,
      options.signal,
      (metadata, call, callback) => this.client.getMod({ module, version }, metadata, call, callback),
    );
    return response.mod;
  }

  async list(module: string, options: CallOptions = {}): Promise<string[]> {
    const op = 'storage.grpc.list';
    const refs = { module };
    checkText(op, 'module', module, refs);
    const response = await this.unary<storageV1.ListResponse>(
      op,
      refs,
      options.signal,
      (metadata, call, callback) => this.client.list({ module }, metadata, call, callback),
    );
    return response.versions;
  }

  async delete(module: string, version: string, options: CallOptions = {}): Promise<void> {
    const op = 'storage.grpc.delete';
    const refs = this.checkRef(op, module, version);
    await this.unary<storageV1.DeleteResponse>(op, refs, options.signal, (metadata, call, callback) =>
      this.client.delete({ module, version }, metadata, call, callback),
    );
  }

  async catalog(options: CatalogOptions): Promise<CatalogPage> {
    const op = 'storage.grpc.catalog';
    const { pageSize, pageToken = '', signal } = options;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_INT32) {
      throw errors.invalidArgument(op, `pageSize must be a positive integer, not ${pageSize}`);
    }
    checkText(op, 'pageToken', pageToken, {});
    const response = await this.unary<storageV1.CatalogResponse>(op, {}, signal, (metadata, call, callback) =>
      this.client.catalog({ pageSize, pageToken }, metadata, call, callback),
    );
    const entries = response.entries.map(({ module, version }) => ({ module, version }));
    return response.nextPageToken === '' ? { entries } : { entries, nextPageToken: response.nextPageToken };
  }

  async index(options: IndexOptions): Promise<IndexPage> {
    const op = 'storage.grpc.index';
    const { limit, since, pageToken = '', signal } = options;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_INT32) {
      throw errors.invalidArgument(op, `limit must be a positive integer, not ${limit}`);
    }
    if (since !== undefined && (!(since instanceof Date) || Number.isNaN(since.getTime()))) {
      throw errors.invalidArgument(op, 'since must be a valid date');
    }
    checkText(op, 'pageToken', pageToken, {});
    const response = await this.unary<storageV1.IndexResponse>(op, {}, signal, (metadata, call, callback) =>
      this.client.index({ limit, pageToken, ...(since ? { since } : {}) }, metadata, call, callback),
    );
    const entries = response.entries.map(({ module, version, storedAt }) => {
      if (!storedAt)
        throw errors.internal(op, `the storage service sent ${module}@${version} without a stored time`);
      return { module, version, storedAt };
    });
    return response.nextPageToken === '' ? { entries } : { entries, nextPageToken: response.nextPageToken };
  }

  /**
   * Resolves once the server has found the zip and sent its header. The stream then ends
   * only after the trailer's SHA-256 matched the bytes received, and fails otherwise.
   * Concurrent reads of one zip share one download (see {@link SharedZipDownloads}); the
   * caller's signal ends only its own read.
   */
  async zip(module: string, version: string, options: CallOptions = {}): Promise<ZipContent> {
    const op = 'storage.grpc.zip';
    const refs = this.checkRef(op, module, version);
    return this.sharedZips.open(
      `${module}@${version}`,
      () => this.download(op, module, version, refs),
      options.signal,
      (signal) => abortedError(op, signal, refs),
    );
  }

  /** One GetZip call; destroying the stream before its end cancels the call. */
  private download(
    op: string,
    module: string,
    version: string,
    refs: ModuleErrorOptions,
  ): Promise<ZipContent> {
    return new Promise<ZipContent>((resolve, reject) => {
      const call = this.client.getZip({ module, version }, this.metadata());
      const hash = createHash('sha256');
      let stream: Readable | undefined;
      let size = 0;
      let received = 0;
      let headerSha256 = '';
      let trailerSeen = false;
      let finished = false;
      let halted: ModuleError | undefined;
      let timer: NodeJS.Timeout | undefined;

      /** Ends the call from our side; the call's error event then reports `halted`. */
      const halt = (error: ModuleError) => {
        halted ??= error;
        disarm();
        call.cancel();
      };
      const arm = (ms: number, message: string) => {
        clearTimeout(timer);
        timer = setTimeout(() => halt(errors.timeout(op, message, refs)), ms);
      };
      const armIdle = () => arm(this.zipIdleTimeoutMs, `no zip bytes for ${this.zipIdleTimeoutMs} ms`);
      const disarm = () => {
        clearTimeout(timer);
        timer = undefined;
      };
      const finish = () => {
        finished = true;
        disarm();
      };
      const fail = (error: ModuleError) => {
        finish();
        if (stream) stream.destroy(error);
        else reject(error);
      };

      const start = (header: storageV1.ZipHeader) => {
        size = header.size;
        headerSha256 = header.sha256.toLowerCase();
        stream = new Readable({
          highWaterMark: ZIP_CHUNK_BYTES,
          read: () => {
            if (finished || halted) return;
            call.resume();
            if (!timer) armIdle();
          },
          destroy: (error, callback) => {
            if (!finished) halt(errors.cancelled(op, 'the zip stream was closed before its end', refs));
            callback(error);
          },
        });
        armIdle();
        resolve({ size, stream, ...(headerSha256 === '' ? {} : { sha256: headerSha256 }) });
      };

      const receive = (readable: Readable, part: GetZipResponse['part']) => {
        switch (part?.$case) {
          case 'chunk': {
            received += part.value.length;
            if (received > size)
              return halt(errors.internal(op, `zip is longer than its ${size} bytes`, refs));
            hash.update(part.value);
            if (readable.push(part.value)) {
              armIdle();
            } else {
              // The reader is behind: stop taking messages, and stop the idle clock with them.
              call.pause();
              disarm();
            }
            return;
          }
          case 'trailer': {
            const actual = hash.digest('hex');
            const sent = part.value.sha256.toLowerCase();
            if (received !== size) {
              return halt(errors.internal(op, `zip has ${received} bytes, its header said ${size}`, refs));
            }
            if (actual !== sent || (headerSha256 !== '' && actual !== headerSha256)) {
              return halt(errors.internal(op, `zip SHA-256 ${actual} does not match the sent ${sent}`, refs));
            }
            trailerSeen = true;
            return;
          }
          default:
            return halt(errors.internal(op, 'unexpected message in the zip stream', refs));
        }
      };

      call.on('data', (message: GetZipResponse) => {
        if (finished || halted) return;
        if (!stream) {
          if (message.part?.$case === 'header') start(message.part.value);
          else halt(errors.internal(op, 'the zip stream did not start with its header', refs));
          return;
        }
        if (trailerSeen) return halt(errors.internal(op, 'message after the zip trailer', refs));
        receive(stream, message.part);
      });
      call.on('error', (error: ServiceError) => {
        if (!finished) fail(halted ?? grpcCallFailure(error, op, refs));
      });
      call.on('end', () => {
        if (finished) return;
        if (!stream || !trailerSeen) {
          fail(halted ?? errors.internal(op, 'the zip stream ended before its trailer', refs));
          return;
        }
        finish();
        stream.push(null);
      });
      arm(this.deadlineMs, `no zip header within ${this.deadlineMs} ms`);
    });
  }

  /**
   * Streams the zip up while reading it, then sends a trailer with the size and SHA-256 of
   * what was sent; the server stores the version only if both match (and match
   * `input.zipSha256`, when given). Any failure here cancels the call, and a cancelled upload
   * leaves nothing stored.
   */
  async save(input: SaveInput, options: CallOptions = {}): Promise<void> {
    const op = 'storage.grpc.save';
    const { module, version, info, mod, zip, zipSha256 = '' } = input;
    const { signal } = options;
    let refs: ModuleErrorOptions = { module, version };
    try {
      refs = this.checkRef(op, module, version);
      checkBytes(op, 'info', info, refs);
      checkBytes(op, 'mod', mod, refs);
      checkText(op, 'zipSha256', zipSha256, refs);
      if (signal?.aborted) throw abortedError(op, signal, refs);
    } catch (error) {
      // Like every backend: a save that fails leaves the caller's zip stream closed.
      zip.destroy();
      throw error;
    }

    const stop = new AbortController();
    let halted: ModuleError | undefined;
    let call: ClientWritableStream<SaveRequest> | undefined;
    /** Ends the upload from our side: the server discards what it got, the zip is not read on. */
    const halt = (error: ModuleError) => {
      if (halted) return;
      halted = error;
      stop.abort(error);
      call?.cancel();
      if (!zip.destroyed) zip.destroy();
    };
    const response = new Promise<void>((resolve, reject) => {
      call = this.client.save(this.metadata(), {}, (error) => {
        if (!error) return resolve();
        // An early answer (e.g. already-exists) must stop the upload too.
        halt(grpcCallFailure(error, op, refs, signal));
        reject(halted);
      });
    });
    // Awaited only after the upload; until then a rejection is handled through `halt`.
    response.catch(() => undefined);
    const onAbort = () => {
      if (signal) halt(abortedError(op, signal, refs));
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    const send = async (writer: MessageWriter<SaveRequest>, message: SaveRequest) => {
      const idle = setTimeout(
        () => halt(errors.timeout(op, `the server took no zip bytes for ${this.zipIdleTimeoutMs} ms`, refs)),
        this.zipIdleTimeoutMs,
      );
      try {
        await writer.write(message);
      } finally {
        clearTimeout(idle);
      }
    };

    try {
      if (!call) throw errors.internal(op, 'the upload call did not start', refs);
      const sink = call;
      const writer = new MessageWriter<SaveRequest>(sink, stop.signal);
      await send(writer, { part: { $case: 'header', value: { module, version, info, mod, zipSha256 } } });
      const hash = createHash('sha256');
      let size = 0;
      for await (const data of zip) {
        for (const chunk of zipChunks(asBuffer(data))) {
          hash.update(chunk);
          size += chunk.length;
          await send(writer, { part: { $case: 'chunk', value: chunk } });
        }
      }
      await send(writer, {
        part: { $case: 'trailer', value: { zipSize: size, zipSha256: hash.digest('hex') } },
      });
      sink.end();
      const commit = setTimeout(
        () => halt(errors.timeout(op, `no answer within ${this.deadlineMs} ms of the upload's end`, refs)),
        this.deadlineMs,
      );
      try {
        await response;
      } finally {
        clearTimeout(commit);
      }
    } catch (error) {
      const failure = toModuleError(error, op, refs);
      halt(failure);
      throw await this.storedAfterAll(halted ?? failure, module, version, signal);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * A save that timed out or lost its connection may still have been stored, by this upload or
   * by another replica's (under load, the answer can take longer than the deadline): storage
   * is asked. Stored means the caller can serve the version, so it hears `already-exists`
   * rather than a failure; otherwise the original failure stands.
   */
  private async storedAfterAll(
    failure: ModuleError,
    module: string,
    version: string,
    signal: AbortSignal | undefined,
  ): Promise<ModuleError> {
    if (signal?.aborted || (failure.kind !== 'timeout' && failure.kind !== 'unavailable')) return failure;
    const stored = await this.exists(module, version).catch(() => false);
    if (!stored) return failure;
    return errors.alreadyExists(
      failure.op,
      `${module}@${version} is stored, though this upload got no answer (${failure.message})`,
      { module, version, cause: failure },
    );
  }

  async close(): Promise<void> {
    this.client.close();
  }

  private checkRef(op: string, module: string, version: string): ModuleErrorOptions {
    const refs = { module, version };
    checkText(op, 'module', module, refs);
    checkText(op, 'version', version, refs);
    return refs;
  }

  private metadata(): Metadata {
    return bearerMetadata(this.token);
  }

  private unary<Res>(
    op: string,
    refs: ModuleErrorOptions,
    signal: AbortSignal | undefined,
    invoke: UnaryInvoke<Res>,
  ): Promise<Res> {
    return callUnary({ op, refs, signal, deadlineMs: this.deadlineMs, metadata: this.metadata() }, invoke);
  }
}
