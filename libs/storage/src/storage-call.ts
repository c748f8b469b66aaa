import { abortedError, errors, ModuleError, toModuleError, type ModuleErrorOptions } from '@modproxy/errors';
import { checkModulePath, isCanonicalVersion } from '@modproxy/gomod';

/**
 * Argument checks and error translation shared by the storage adapters, so that every
 * backend rejects the same inputs with the same kinds.
 */

/** Throws invalid-argument unless `module` is a module path the go command would request. */
export function checkModule(op: string, module: string): void {
  if (typeof module !== 'string') {
    throw errors.invalidArgument(op, 'module path must be a string');
  }
  try {
    checkModulePath(module);
  } catch (error) {
    throw errors.invalidArgument(op, error instanceof Error ? error.message : String(error), {
      module,
      cause: error,
    });
  }
}

/** Throws invalid-argument unless `module` is valid and `version` is a canonical version. */
export function checkModuleVersion(op: string, module: string, version: string): void {
  checkModule(op, module);
  if (typeof version !== 'string' || !isCanonicalVersion(version)) {
    throw errors.invalidArgument(
      op,
      `invalid version ${JSON.stringify(version)}: not a canonical semantic version`,
      {
        module,
        version: typeof version === 'string' ? version : undefined,
      },
    );
  }
}

/**
 * Translates anything thrown inside an adapter: once the caller's signal has fired, the
 * failure is reported as the abort (a stream torn down by it fails with some other error).
 */
export function toStorageError(
  error: unknown,
  op: string,
  signal: AbortSignal | undefined,
  options: ModuleErrorOptions = {},
): ModuleError {
  if (signal?.aborted && !(error instanceof ModuleError)) return abortedError(op, signal, options);
  return toModuleError(error, op, options);
}

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/** The expected zip digest in lower case, or undefined; throws invalid-argument when malformed. */
export function normalizeZipSha256(
  op: string,
  zipSha256: string | undefined,
  options: ModuleErrorOptions,
): string | undefined {
  if (zipSha256 === undefined) return undefined;
  if (typeof zipSha256 !== 'string' || !SHA256_HEX.test(zipSha256)) {
    throw errors.invalidArgument(op, 'zipSha256 must be 64 hex digits', options);
  }
  return zipSha256.toLowerCase();
}

/** Stream chunks may be strings or typed arrays; the digest and the stored bytes need Buffers. */
export function chunkToBuffer(op: string, chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk);
  throw errors.invalidArgument(op, 'zip stream must yield bytes');
}
