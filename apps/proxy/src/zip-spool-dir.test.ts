import { randomBytes } from 'node:crypto';
import { readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryStorage, type ModuleStorage } from '@modproxy/storage';
import { startStorageGrpcServer, type StorageGrpcServer } from '@modproxy/storage-grpc';
import { createTempDir, removeDir } from '@modproxy/testing';
import { createStorage } from './compose';
import { loadProxyConfig } from './config';

const MODULE = 'example.test/spool/lib';
const VERSION = 'v1.0.0';

/** Where the files this process holds open live (Linux: /proc/self/fd), unlinked ones included. */
async function openFiles(): Promise<string[]> {
  const fds = await readdir('/proc/self/fd');
  const targets = await Promise.all(fds.map((fd) => readlink(join('/proc/self/fd', fd)).catch(() => '')));
  return targets.filter((target) => target !== '');
}

describe('the proxy’s storage service client (STORAGE_TYPE=grpc)', () => {
  let backend: MemoryStorage;
  let server: StorageGrpcServer;
  let workDir: string;
  let storage: ModuleStorage | undefined;

  beforeEach(async () => {
    backend = new MemoryStorage();
    server = await startStorageGrpcServer({ storage: backend, port: 0 });
    workDir = await createTempDir('proxy-go-work-');
  });
  afterEach(async () => {
    await storage?.close();
    await server.close();
    await backend.close();
    await removeDir(workDir);
  });

  it('spools a zip for its readers in GO_WORK_DIR, not in the OS temp dir (memory in containers)', async () => {
    const zip = randomBytes(3 * 1024 * 1024);
    await backend.save({
      module: MODULE,
      version: VERSION,
      info: Buffer.from(`{"Version":"${VERSION}","Time":"2024-01-02T03:04:05Z"}`),
      mod: Buffer.from(`module ${MODULE}\n`),
      zip: Readable.from([zip]),
    });
    const spoolDir = join(workDir, 'not-made-yet');
    storage = await createStorage(
      loadProxyConfig({
        env: { STORAGE_TYPE: 'grpc', STORAGE_GRPC_URL: `127.0.0.1:${server.port}`, GO_WORK_DIR: spoolDir },
      }),
    );
    const { stream, size } = await storage.zip(MODULE, VERSION);
    expect(size).toBe(zip.length);
    const chunks: Buffer[] = [];
    let spooled: string[] = [];
    for await (const chunk of stream) {
      // While the zip is read, its spool is open: an unlinked file in GO_WORK_DIR.
      if (chunks.length === 0)
        spooled = (await openFiles()).filter((file) => file.startsWith(`${spoolDir}/modproxy-zip-spool-`));
      chunks.push(chunk as Buffer);
    }
    expect(spooled).toHaveLength(1);
    expect(spooled[0]).toMatch(/ \(deleted\)$/);
    expect(Buffer.concat(chunks).equals(zip)).toBe(true);
    // Nothing of it is left there by name.
    expect(await readdir(spoolDir)).toEqual([]);
  });
});
