import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { fstatSync, open as openCallback } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { DiskZipStream } from './disk-zip-stream';

const CHUNK = 1024;

describe('DiskZipStream', () => {
  let dir: string;
  let file: string;
  const bytes = randomBytes(CHUNK * 7 + 300);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'disk-zip-stream-'));
    file = join(dir, 'zip');
    await writeFile(file, bytes);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** A plain descriptor (a FileHandle would close it again when collected): the stream owns it. */
  const openFd = () =>
    new Promise<number>((resolve, reject) =>
      openCallback(file, 'r', (error, fd) => (error ? reject(error) : resolve(fd))),
    );

  it('gives every byte, reads into the chunks handed back instead of new ones, and closes the file', async () => {
    const fd = await openFd();
    const stream = new DiskZipStream(fd, bytes.length, CHUNK);
    const received: Buffer[] = [];
    const memories = new Set<ArrayBufferLike>();
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      received.push(Buffer.from(chunk));
      memories.add(chunk.buffer);
      // As the socket's write callback would: done with it.
      stream.recycle(chunk);
    }
    expect(Buffer.concat(received)).toEqual(bytes);
    // Eight reads through at most three chunks of memory.
    expect(received).toHaveLength(8);
    expect(memories.size).toBeLessThanOrEqual(3);
    expect(() => fstatSync(fd)).toThrow();
  });

  it('gives every byte in fresh chunks to a consumer that hands none back', async () => {
    const stream = new DiskZipStream(await openFd(), bytes.length, CHUNK);
    const received: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) received.push(chunk);
    expect(Buffer.concat(received)).toEqual(bytes);
    expect(new Set(received.map((chunk) => chunk.buffer)).size).toBe(8);
  });

  it('fails when the file ends before the size it was opened with', async () => {
    const stream = new DiskZipStream(await openFd(), bytes.length + 10, CHUNK);
    await expect(async () => {
      for await (const _chunk of stream as AsyncIterable<Buffer>) void _chunk;
    }).rejects.toThrow(/zip ended at/);
  });
});
