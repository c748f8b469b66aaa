/** How zips are cut into messages, shared by both ends of the stream. */

/** Largest zip chunk in one message: big enough to amortise framing, small enough to interleave calls. */
export const ZIP_CHUNK_BYTES = 1024 * 1024;

/**
 * Largest message either end accepts. A header carries a go.mod, which the go command allows
 * up to 16 MiB, plus the .info; chunks are far smaller.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024;

export const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Views of at most {@link ZIP_CHUNK_BYTES} over `bytes`, without copying. */
export function* zipChunks(bytes: Buffer): Generator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += ZIP_CHUNK_BYTES) {
    yield bytes.subarray(offset, offset + ZIP_CHUNK_BYTES);
  }
}

/** Stream chunks may be strings or other typed arrays; messages need Buffers. */
export function asBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk);
  throw new TypeError('zip stream must yield bytes');
}
