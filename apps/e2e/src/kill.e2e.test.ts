import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readdir, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { MongoClient } from 'mongodb';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { DiskStorage } from '@modproxy/storage';
import { GrpcStorage } from '@modproxy/storage-grpc';
import {
  type AppProcess,
  createTempDir,
  type LargeModule,
  PausingGoproxy,
  rawRequest,
  removeDir,
  startAppProcess,
  writeLargeModule,
} from '@modproxy/testing';

const root = join(__dirname, '..', '..', '..');
const main = (app: string) => join(root, 'dist', 'apps', app, 'main.js');
const MiB = 1024 * 1024;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function kill(app: AppProcess): Promise<void> {
  const exited = once(app.child, 'exit');
  app.child.kill('SIGKILL');
  await exited;
}

/** The size of the largest file below `dir` whose top-level entry starts with `prefix` (0 if none). */
async function largestFile(dir: string, prefix: string): Promise<number> {
  let largest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const top =
      join(entry.parentPath, entry.name)
        .slice(dir.length + 1)
        .split('/')[0] ?? '';
    if (!entry.isFile() || !top.startsWith(prefix)) continue;
    largest = Math.max(
      largest,
      (await stat(join(entry.parentPath, entry.name)).catch(() => ({ size: 0 }))).size,
    );
  }
  return largest;
}

/** Killed with SIGKILL in the middle of a save of a 40 MiB zip, then started again. */
describe('kill for real', () => {
  let sandbox: string;
  let large: LargeModule;
  let upstream: PausingGoproxy;
  const running: AppProcess[] = [];

  beforeEach(async () => {
    sandbox = await createTempDir('e2e-kill-');
    for (const dir of ['upstream', 'storage', 'tmp', 'home', 'cwd']) await mkdir(join(sandbox, dir));
    large = await writeLargeModule(join(sandbox, 'upstream'), { zipBytes: 40 * MiB });
    upstream = await PausingGoproxy.start(join(sandbox, 'upstream'));
  });

  afterEach(async () => {
    for (const app of running.splice(0)) await app.stop();
    await upstream?.stop();
    await removeDir(sandbox);
  });

  const base = () => ({
    PATH: process.env['PATH'] ?? '',
    HOME: join(sandbox, 'home'),
    TMPDIR: join(sandbox, 'tmp'),
    LOG_LEVEL: 'warn',
  });

  async function start(app: string, env: Record<string, string>, ready: RegExp): Promise<AppProcess> {
    const started = await startAppProcess(main(app), {
      env: { ...base(), ...env },
      cwd: join(sandbox, 'cwd'),
      ready,
    });
    running.push(started);
    return started;
  }

  it('the proxy (disk storage): no partial version after SIGKILL mid-fetch, and the next request fetches it byte-exact', async () => {
    const storageDir = join(sandbox, 'storage');
    const env = { PORT: '0', STORAGE_DIR: storageDir, UPSTREAM: upstream.url };
    const first = await start('proxy', env, /export GOPROXY=(\S+)/);
    const half = 24 * MiB;
    const pause = upstream.pauseAfter(large.zipUrlPath, half);
    const download = rawRequest(first.match[1] ?? '', large.zipUrlPath).then(
      (response) => response,
      (error: unknown) => error,
    );
    await pause.reached;
    // Exactly halfway: every byte the upstream sent is in the proxy's temp file.
    await expect
      .poll(() => largestFile(join(sandbox, 'tmp'), 'goproxy-fetch-'), { timeout: 30_000 })
      .toBe(half);
    await kill(first);
    expect(await download).toBeInstanceOf(Error);
    pause.resume();

    // What the dead process left: its fetch directory and its lease. Neither is a version.
    const leftovers = (await readdir(join(sandbox, 'tmp'))).filter((name) =>
      name.startsWith('goproxy-fetch-'),
    );
    expect(leftovers).toHaveLength(1);
    const inspector = await DiskStorage.open({ root: storageDir });
    expect(await inspector.exists(large.module, large.version)).toBe(false);
    expect(await inspector.list(large.module)).toEqual([]);
    expect(await inspector.catalog({ pageSize: 10 })).toEqual({ entries: [] });
    await inspector.close();

    // Older than any fetch deadline, as after a long outage: the next start removes them.
    const longAgo = new Date(Date.now() - 3 * 3_600_000);
    await utimes(join(sandbox, 'tmp', leftovers[0] ?? ''), longAgo, longAgo);
    for (const lease of await readdir(join(storageDir, '.leases'))) {
      await utimes(join(storageDir, '.leases', lease), longAgo, longAgo);
    }
    const second = await start('proxy', env, /export GOPROXY=(\S+)/);
    const again = await rawRequest(second.match[1] ?? '', large.zipUrlPath);
    expect(again.status).toBe(200);
    expect(again.body.length).toBe(large.zip.length);
    expect(sha256(again.body)).toBe(large.zipSha256);
    expect(upstream.requestCount(decodeURIComponent(large.zipUrlPath))).toBe(2);
    await expect
      .poll(async () => (await readdir(join(sandbox, 'tmp'))).filter((n) => n.startsWith('goproxy-')))
      .toEqual([]);
    expect(await readdir(join(storageDir, '.leases'))).toHaveLength(1);
    expect(await second.stop()).toBe(0);

    const reopened = await DiskStorage.open({ root: storageDir });
    const stored = await reopened.zip(large.module, large.version);
    const chunks: Buffer[] = [];
    for await (const chunk of stored.stream) chunks.push(chunk as Buffer);
    expect(sha256(Buffer.concat(chunks))).toBe(large.zipSha256);
    await reopened.close();
  }, 180_000);

  it('the storage service (MongoDB, FerretDB): no partial version after SIGKILL mid-save, and the next request fetches it byte-exact', async () => {
    const mongoUri = inject('mongoUri');
    const database = `e2e_kill_${randomBytes(4).toString('hex')}`;
    const token = randomBytes(24).toString('hex');
    const storageEnv = {
      STORAGE_BACKEND: 'mongo',
      MONGODB_URI: mongoUri,
      MONGODB_DATABASE: database,
      GRPC_PORT: '0',
      HTTP_PORT: '0',
      STORAGE_TOKEN: token,
    };
    const ready = /grpc 127\.0\.0\.1:(\d+) http (\d+)/;
    const mongo = new MongoClient(mongoUri);
    const clients: GrpcStorage[] = [];
    try {
      const first = await start('storage', storageEnv, ready);
      const writer = new GrpcStorage({ url: `127.0.0.1:${first.match[1] ?? ''}`, token });
      clients.push(writer);
      const zip = new PassThrough();
      const saving = writer
        .save({
          module: large.module,
          version: large.version,
          info: large.info,
          mod: large.mod,
          zip,
          zipSha256: large.zipSha256,
        })
        .then(
          () => 'saved',
          (error: unknown) => error,
        );
      zip.write(large.zip.subarray(0, 16 * MiB));
      // Midway for real: GridFS already holds chunks of this upload (255 KiB each), the rest never comes.
      const chunks = mongo.db(database).collection('zips.chunks');
      await expect.poll(() => chunks.countDocuments(), { timeout: 60_000 }).toBeGreaterThanOrEqual(16);
      await kill(first);
      expect(await saving).toBeInstanceOf(Error);

      const second = await start('storage', storageEnv, ready);
      const grpcUrl = `127.0.0.1:${second.match[1] ?? ''}`;
      const reader = new GrpcStorage({ url: grpcUrl, token });
      clients.push(reader);
      expect(await reader.exists(large.module, large.version)).toBe(false);
      expect(await reader.list(large.module)).toEqual([]);
      expect(await reader.catalog({ pageSize: 10 })).toEqual({ entries: [] });

      const proxy = await start(
        'proxy',
        {
          PORT: '0',
          STORAGE_TYPE: 'grpc',
          STORAGE_GRPC_URL: grpcUrl,
          STORAGE_TOKEN: token,
          UPSTREAM: upstream.url,
        },
        /export GOPROXY=(\S+)/,
      );
      const answer = await rawRequest(proxy.match[1] ?? '', large.zipUrlPath);
      expect(answer.status).toBe(200);
      expect(sha256(answer.body)).toBe(large.zipSha256);
      const stored = await reader.zip(large.module, large.version);
      const parts: Buffer[] = [];
      for await (const part of stored.stream) parts.push(part as Buffer);
      expect(sha256(Buffer.concat(parts))).toBe(large.zipSha256);
      expect(await reader.list(large.module)).toEqual([large.version]);
    } finally {
      for (const client of clients) await client.close();
      await mongo.close();
    }
  }, 300_000);
});
