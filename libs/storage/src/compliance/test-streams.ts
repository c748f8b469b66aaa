import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

/**
 * Byte streams for storage tests: large, reproducible content that is generated as it is
 * read, so a test can push hundreds of MiB through a backend and compare digests without
 * holding the bytes anywhere.
 */

export interface PatternStreamOptions {
  /** Bytes per chunk. Default 64 KiB. */
  chunkSize?: number;
  /** Hand each chunk over on a later turn of the event loop, so concurrent consumers interleave. Default false. */
  interleave?: boolean;
}

/** Deterministic pseudo-random bytes (xorshift32): the same size and seed give the same bytes. */
export function patternStream(size: number, seed: number, options: PatternStreamOptions = {}): Readable {
  const chunkSize = options.chunkSize ?? 64 * 1024;
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`invalid size ${size}`);
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1)
    throw new RangeError(`invalid chunk size ${chunkSize}`);
  const take = patternSource(seed);
  let remaining = size;
  return new Readable({
    read() {
      if (remaining === 0) {
        this.push(null);
        return;
      }
      const n = Math.min(chunkSize, remaining);
      remaining -= n;
      const chunk = take(n);
      if (options.interleave) setImmediate(() => this.push(chunk));
      else this.push(chunk);
    },
  });
}

/** Hex SHA-256 of what {@link patternStream} yields for `size` and `seed`. */
export async function patternSha256(size: number, seed: number): Promise<string> {
  return (await streamDigest(patternStream(size, seed))).sha256;
}

/** The first `size` bytes of the pattern for `seed`, for small cases that compare buffers. */
export function patternBuffer(size: number, seed: number): Buffer {
  return patternSource(seed)(size);
}

/** Reads a stream to its end, keeping only its digest and length. */
export async function streamDigest(stream: Readable): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    hash.update(bytes);
    size += bytes.length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Reads a (small) stream into one buffer. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Yields `bytesBeforeError` pattern bytes, then fails with `error`, like a download cut off midway. */
export function failingStream(
  bytesBeforeError: number,
  seed: number,
  error = new Error('connection reset'),
): Readable {
  const take = patternSource(seed);
  let remaining = bytesBeforeError;
  return new Readable({
    read() {
      if (remaining > 0) {
        const n = Math.min(16 * 1024, remaining);
        remaining -= n;
        this.push(take(n));
        return;
      }
      // Asynchronously, so the bytes before it are really delivered first.
      setImmediate(() => this.destroy(error));
    },
  });
}

export interface StalledStream {
  stream: Readable;
  /** Resolves once the consumer has taken the first `bytesFirst` bytes and asks for more. */
  waitingForMore: Promise<void>;
}

/** Yields `bytesFirst` bytes and then never anything more, like a stalled upstream. */
export function stalledStream(bytesFirst: number, seed: number): StalledStream {
  let resolveWaiting: () => void = () => undefined;
  const waitingForMore = new Promise<void>((resolve) => {
    resolveWaiting = resolve;
  });
  let sent = false;
  const stream = new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(patternBuffer(bytesFirst, seed));
        return;
      }
      resolveWaiting();
    },
  });
  return { stream, waitingForMore };
}

/** Successive bytes of the xorshift32 sequence for `seed`, independent of how they are split into chunks. */
function patternSource(seed: number): (size: number) => Buffer {
  // A zero state would stay zero forever.
  let state = seed >>> 0 || 0x9e3779b9;
  let spare = Buffer.alloc(0);
  return (size) => {
    const out = Buffer.allocUnsafe(size);
    const filled = spare.copy(out, 0, 0, Math.min(spare.length, size));
    spare = spare.subarray(filled);
    if (filled === size) return out;
    const words = Math.ceil((size - filled) / 4);
    const block = Buffer.allocUnsafe(words * 4);
    for (let i = 0; i < words; i++) {
      state ^= state << 13;
      state >>>= 0;
      state ^= state >>> 17;
      state ^= state << 5;
      state >>>= 0;
      block.writeUInt32LE(state, i * 4);
    }
    block.copy(out, filled, 0, size - filled);
    spare = block.subarray(size - filled);
    return out;
  };
}
