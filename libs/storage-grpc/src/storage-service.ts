import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  type handleClientStreamingCall,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type sendUnaryData,
  type ServerReadableStream,
  type ServerWritableStream,
} from '@grpc/grpc-js';
import { storageV1 } from '@modproxy/contracts';
import { errors, toModuleError, type ModuleError, type ModuleErrorOptions } from '@modproxy/errors';
import { checkModulePath, isCanonicalVersion } from '@modproxy/gomod';
import {
  authorizedCall,
  openServerCallScope,
  toGrpcStatusError,
  unaryHandler,
  unauthenticatedStatus,
} from '@modproxy/grpc';
import { MAX_ZIP_FILE } from '@modproxy/modzip';
import type { ModuleStorage, ZipContent } from '@modproxy/storage';
import { MessageWriter } from './backpressure';
import { SaveRace } from './save-race';
import { asBuffer, SHA256_HEX, ZIP_CHUNK_BYTES, zipChunks } from './zip-chunks';

type SaveRequest = storageV1.SaveRequest;
type SaveResponse = storageV1.SaveResponse;
type SaveHeader = storageV1.SaveHeader;
type GetZipRequest = storageV1.GetZipRequest;
type GetZipResponse = storageV1.GetZipResponse;

export interface StorageServiceOptions {
  /**
   * Shared secret that every call must carry as metadata `authorization: Bearer <token>`;
   * other calls fail with UNAUTHENTICATED before touching storage.
   * Default: none, every call is accepted (for loopback or an otherwise protected network).
   */
  token?: string;
  /**
   * Largest zip a Save may carry, counted as the bytes arrive (a header need not declare a
   * size): a longer upload fails with INVALID_ARGUMENT and nothing is stored, whatever the
   * backend. Default: 500 MiB, the go command's module zip limit.
   */
  maxZipBytes?: number;
}

function refsOf(module: string, version?: string): ModuleErrorOptions {
  return version === undefined ? { module } : { module, version };
}

/**
 * The transport checks requests itself rather than trusting the backend to, so any
 * ModuleStorage behind it sees only well-formed module paths and canonical versions.
 */
function checkModuleVersion(op: string, module: string, version: string): void {
  checkModulePath(module);
  if (!isCanonicalVersion(version)) {
    throw errors.invalidArgument(op, `invalid version "${version}": not a canonical semantic version`, {
      module,
      version,
    });
  }
}

/** A unary method of the storage service (see {@link unaryHandler}). */
function unary<Req, Res>(
  method: string,
  token: string | undefined,
  handle: (request: Req, signal: AbortSignal, op: string) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return unaryHandler(`storage.grpc.${method}`, token, handle);
}

async function sendZip(
  storage: ModuleStorage,
  call: ServerWritableStream<GetZipRequest, GetZipResponse>,
  op: string,
): Promise<void> {
  const scope = openServerCallScope(call);
  const { module, version } = call.request;
  const refs = refsOf(module, version);
  let content: ZipContent | undefined;
  try {
    checkModuleVersion(op, module, version);
    content = await storage.zip(module, version, { signal: scope.signal });
    const opened = content;
    // A cancelled call stops the backend's read now, not when its next bytes happen to come.
    scope.signal.addEventListener('abort', () => opened.stream.destroy(), { once: true });
    const writer = new MessageWriter<GetZipResponse>(call, scope.signal);
    // The header carries the digest when the backend knows it (a cache can check its copy
    // against it); the trailer always carries the digest of what was sent.
    await writer.write({
      part: { $case: 'header', value: { size: content.size, sha256: content.sha256 ?? '' } },
    });
    const hash = createHash('sha256');
    let sent = 0;
    // Pulling from the backend only after each write drained keeps memory flat however big the zip.
    for await (const data of content.stream) {
      for (const chunk of zipChunks(asBuffer(data))) {
        hash.update(chunk);
        sent += chunk.length;
        await writer.write({ part: { $case: 'chunk', value: chunk } });
      }
    }
    if (sent !== content.size) {
      throw errors.internal(op, `stored zip has ${sent} bytes, not the ${content.size} its size says`, refs);
    }
    await writer.write({ part: { $case: 'trailer', value: { sha256: hash.digest('hex') } } });
    call.end();
  } catch (error) {
    content?.stream.destroy();
    // A cancelled call has nobody to answer.
    if (!call.cancelled) call.emit('error', toGrpcStatusError(error, op, refs));
  } finally {
    scope.close();
  }
}

function zipTooLarge(op: string, maxZipBytes: number, refs: ModuleErrorOptions): ModuleError {
  return errors.invalidArgument(op, `zip exceeds the limit of ${maxZipBytes} bytes`, refs);
}

function checkHeader(op: string, header: SaveHeader, maxZipBytes: number): SaveHeader {
  const { module, version, zipSize, zipSha256 } = header;
  checkModuleVersion(op, module, version);
  const refs = refsOf(module, version);
  if (zipSize !== undefined && (!Number.isSafeInteger(zipSize) || zipSize < 0)) {
    throw errors.invalidArgument(op, `invalid zip size ${zipSize}`, refs);
  }
  if (zipSize !== undefined && zipSize > maxZipBytes) throw zipTooLarge(op, maxZipBytes, refs);
  const sha256 = zipSha256.toLowerCase();
  if (sha256 !== '' && !SHA256_HEX.test(sha256)) {
    throw errors.invalidArgument(op, 'zip SHA-256 must be 64 hex digits', refs);
  }
  return { ...header, zipSha256: sha256 };
}

/**
 * One upload: the header starts `storage.save` with a zip stream that this function feeds
 * from the following chunk messages, pausing the call whenever storage is behind. The zip
 * stream ends only after the trailer matched what arrived, so storage commits nothing that
 * is incomplete, cancelled or corrupt: any failure destroys the zip stream first.
 */
function receiveSave(
  storage: ModuleStorage,
  call: ServerReadableStream<SaveRequest, SaveResponse>,
  callback: sendUnaryData<SaveResponse>,
  op: string,
  maxZipBytes: number,
  race: SaveRace,
): void {
  const scope = openServerCallScope(call);
  const hash = createHash('sha256');
  let header: SaveHeader | undefined;
  let zip: Readable | undefined;
  let received = 0;
  let complete = false;
  let failure: ModuleError | undefined;
  let answered = false;
  let entry: { won(): void; leave(): void } | undefined;

  const refs = (): ModuleErrorOptions => (header ? refsOf(header.module, header.version) : {});

  const answer = (error: unknown) => {
    if (answered) return;
    answered = true;
    entry?.leave();
    scope.close();
    call.removeListener('data', onData);
    if (zip && !zip.destroyed) zip.destroy();
    // Whatever still arrives is read and dropped, so the call can finish.
    call.resume();
    if (error === undefined) callback(null, {});
    else callback(toGrpcStatusError(error, op, refs()));
  };

  const fail = (error: unknown) => {
    failure ??= toModuleError(error, op, refs());
    if (zip && !zip.destroyed) {
      // storage.save fails on the destroyed stream and answers through its rejection.
      zip.destroy(failure);
    } else if (!zip) {
      answer(failure);
    }
  };

  const startSave = (first: SaveHeader) => {
    header = checkHeader(op, first, maxZipBytes);
    zip = new Readable({
      highWaterMark: ZIP_CHUNK_BYTES,
      read: () => {
        call.resume();
      },
    });
    // A backend may not be reading yet when a failure destroys the stream (it may still be
    // preparing its work files); the failure is answered through `failure`, not this event.
    zip.on('error', () => undefined);
    // Answered at once when another save of this version is stored first; the backend then
    // fails on the destroyed stream and cleans up after itself in the background.
    entry = race.enter(`${header.module}@${header.version}`, () =>
      answer(errors.alreadyExists(op, 'another upload of this version was stored first', refs())),
    );
    storage
      .save(
        {
          module: header.module,
          version: header.version,
          info: header.info,
          mod: header.mod,
          zip,
          ...(header.zipSha256 === '' ? {} : { zipSha256: header.zipSha256 }),
        },
        { signal: scope.signal },
      )
      .then(
        // Stored is stored, even if the client gave up after sending its trailer.
        () => {
          entry?.won();
          answer(undefined);
        },
        (error: unknown) => answer(failure ?? error),
      );
  };

  const receiveChunk = (current: SaveHeader, stream: Readable, chunk: Buffer) => {
    if (chunk.length > ZIP_CHUNK_BYTES) {
      throw errors.invalidArgument(
        op,
        `zip chunk of ${chunk.length} bytes exceeds ${ZIP_CHUNK_BYTES}`,
        refs(),
      );
    }
    received += chunk.length;
    // Counted here, not trusted to the header: a header may leave the size out.
    if (received > maxZipBytes) throw zipTooLarge(op, maxZipBytes, refs());
    if (current.zipSize !== undefined && received > current.zipSize) {
      throw errors.invalidArgument(
        op,
        `zip is longer than the ${current.zipSize} bytes its header declared`,
        refs(),
      );
    }
    hash.update(chunk);
    if (!stream.push(chunk)) call.pause();
  };

  const receiveTrailer = (current: SaveHeader, stream: Readable, trailer: storageV1.SaveTrailer) => {
    const actual = hash.digest('hex');
    const declaredSize = current.zipSize ?? trailer.zipSize;
    if (received !== trailer.zipSize || received !== declaredSize) {
      throw errors.invalidArgument(
        op,
        `zip has ${received} bytes, but ${declaredSize} were declared (trailer: ${trailer.zipSize})`,
        refs(),
      );
    }
    const expected = current.zipSha256 === '' ? trailer.zipSha256.toLowerCase() : current.zipSha256;
    if (actual !== expected || actual !== trailer.zipSha256.toLowerCase()) {
      throw errors.invalidArgument(
        op,
        `zip SHA-256 ${actual} does not match the expected ${expected}`,
        refs(),
      );
    }
    complete = true;
    stream.push(null);
  };

  function onData(message: SaveRequest) {
    if (failure) return;
    try {
      const part = message.part;
      if (!header || !zip) {
        if (part?.$case !== 'header') {
          throw errors.invalidArgument(op, 'an upload must start with its header');
        }
        startSave(part.value);
        return;
      }
      if (complete) throw errors.invalidArgument(op, 'nothing may follow the trailer of an upload', refs());
      switch (part?.$case) {
        case 'chunk':
          receiveChunk(header, zip, part.value);
          return;
        case 'trailer':
          receiveTrailer(header, zip, part.value);
          return;
        case 'header':
          throw errors.invalidArgument(op, 'an upload has exactly one header', refs());
        default:
          throw errors.invalidArgument(op, 'empty upload message', refs());
      }
    } catch (error) {
      fail(error);
    }
  }

  call.on('data', onData);
  call.once('end', () => {
    if (!header) fail(errors.invalidArgument(op, 'the upload ended before its header'));
    else if (!complete)
      fail(errors.invalidArgument(op, 'the upload ended before its trailer: the zip is incomplete', refs()));
  });
  // A cancelled call: tear the zip down now, not when storage next happens to read it.
  scope.signal.addEventListener('abort', () => fail(scope.signal.reason), { once: true });
}

/**
 * The grpc-js implementation of `modproxy.storage.v1.StorageService` over any ModuleStorage.
 * Every call is checked before it reaches storage (INVALID_ARGUMENT), runs with an
 * AbortSignal that fires on client cancellation or deadline, and answers failures with the
 * code of its error kind (see error-codes.ts).
 */
export function createStorageServiceHandlers(
  storage: ModuleStorage,
  options: StorageServiceOptions = {},
): storageV1.StorageServiceServer {
  const { token } = options;
  const maxZipBytes = options.maxZipBytes ?? MAX_ZIP_FILE;
  const race = new SaveRace();
  return {
    stat: unary<storageV1.StatRequest, storageV1.StatResponse>('stat', token, async (request, signal, op) => {
      checkModuleVersion(op, request.module, request.version);
      return { exists: await storage.exists(request.module, request.version, { signal }) };
    }),
    getInfo: unary<storageV1.GetInfoRequest, storageV1.GetInfoResponse>(
      'getInfo',
      token,
      async (request, signal, op) => {
        checkModuleVersion(op, request.module, request.version);
        return { info: await storage.info(request.module, request.version, { signal }) };
      },
    ),
    getMod: unary<storageV1.GetModRequest, storageV1.GetModResponse>(
      'getMod',
      token,
      async (request, signal, op) => {
        checkModuleVersion(op, request.module, request.version);
        return { mod: await storage.mod(request.module, request.version, { signal }) };
      },
    ),
    getZip: ((call) => {
      if (!authorizedCall(call, token)) {
        call.emit('error', unauthenticatedStatus());
        return;
      }
      void sendZip(storage, call, 'storage.grpc.getZip');
    }) satisfies handleServerStreamingCall<GetZipRequest, GetZipResponse>,
    save: ((call, callback) => {
      if (!authorizedCall(call, token)) {
        callback(unauthenticatedStatus());
        return;
      }
      receiveSave(storage, call, callback, 'storage.grpc.save', maxZipBytes, race);
    }) satisfies handleClientStreamingCall<SaveRequest, SaveResponse>,
    list: unary<storageV1.ListRequest, storageV1.ListResponse>('list', token, async (request, signal) => {
      checkModulePath(request.module);
      return { versions: await storage.list(request.module, { signal }) };
    }),
    delete: unary<storageV1.DeleteRequest, storageV1.DeleteResponse>(
      'delete',
      token,
      async (request, signal, op) => {
        checkModuleVersion(op, request.module, request.version);
        await storage.delete(request.module, request.version, { signal });
        return {};
      },
    ),
    catalog: unary<storageV1.CatalogRequest, storageV1.CatalogResponse>(
      'catalog',
      token,
      async (request, signal) => {
        // Page size and token are the backend's to judge: it knows its own limits.
        const page = await storage.catalog({
          pageSize: request.pageSize,
          ...(request.pageToken === '' ? {} : { pageToken: request.pageToken }),
          signal,
        });
        return { entries: page.entries, nextPageToken: page.nextPageToken ?? '' };
      },
    ),
    index: unary<storageV1.IndexRequest, storageV1.IndexResponse>('index', token, async (request, signal) => {
      // Limit, time and token are the backend's to judge, as for the catalog.
      const page = await storage.index({
        limit: request.limit,
        ...(request.since === undefined ? {} : { since: request.since }),
        ...(request.pageToken === '' ? {} : { pageToken: request.pageToken }),
        signal,
      });
      return { entries: page.entries, nextPageToken: page.nextPageToken ?? '' };
    }),
  };
}
