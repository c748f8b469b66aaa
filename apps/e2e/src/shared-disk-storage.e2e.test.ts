import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readdir, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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
const READY = /grpc 127\.0\.0\.1:(\d+) http (\d+)/;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Sizes of the files in `.tmp` work directories, by work directory. */
async function workFiles(storageDir: string): Promise<Record<string, number>> {
  const work = join(storageDir, '.tmp');
  const out: Record<string, number> = {};
  for (const entry of await readdir(work, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out[path.slice(work.length + 1)] = (await stat(path).catch(() => ({ size: -1 }))).size;
  }
  return out;
}

/** The work directories in `.tmp`. */
async function workDirs(storageDir: string): Promise<string[]> {
  return readdir(join(storageDir, '.tmp'));
}

/**
 * Two processes on one storage directory (one volume shared by replicas): the storage service
 * with the disk backend, whose saves are paced by the test's own gRPC client, and the proxy.
 */
describe('processes sharing one disk storage directory and one temp directory', () => {
  let sandbox: string;
  let storageDir: string;
  let large: LargeModule;
  const token = randomBytes(24).toString('hex');
  const running: AppProcess[] = [];
  const clients: GrpcStorage[] = [];

  beforeEach(async () => {
    sandbox = await createTempDir('e2e-shared-disk-');
    storageDir = join(sandbox, 'storage');
    for (const dir of ['upstream', 'storage', 'tmp', 'home', 'cwd']) await mkdir(join(sandbox, dir));
    large = await writeLargeModule(join(sandbox, 'upstream'), { zipBytes: 24 * MiB });
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
    for (const app of running.splice(0)) await app.stop();
    await removeDir(sandbox);
  });

  async function start(app: string, env: Record<string, string>, ready: RegExp): Promise<AppProcess> {
    const started = await startAppProcess(main(app), {
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: join(sandbox, 'home'),
        TMPDIR: join(sandbox, 'tmp'),
        LOG_LEVEL: 'warn',
        ...env,
      },
      cwd: join(sandbox, 'cwd'),
      ready,
    });
    running.push(started);
    return started;
  }

  const storageEnv = () => ({
    STORAGE_BACKEND: 'disk',
    STORAGE_DIR: storageDir,
    GRPC_PORT: '0',
    HTTP_PORT: '0',
    STORAGE_TOKEN: token,
  });

  function client(app: AppProcess): GrpcStorage {
    const created = new GrpcStorage({ url: `127.0.0.1:${app.match[1] ?? ''}`, token });
    clients.push(created);
    return created;
  }

  /** Starts a save through `app` and sends half the zip; resolves once that half is in its work file. */
  async function halfSaved(app: AppProcess) {
    const zip = new PassThrough();
    const saving = client(app)
      .save(
        {
          module: large.module,
          version: large.version,
          info: large.info,
          mod: large.mod,
          zip,
          zipSha256: large.zipSha256,
        },
        {},
      )
      .then(
        () => 'saved' as const,
        (error: unknown) => error,
      );
    const half = 12 * MiB;
    zip.write(large.zip.subarray(0, half));
    await expect
      .poll(async () => Object.values(await workFiles(storageDir)).includes(half), { timeout: 30_000 })
      .toBe(true);
    return { zip, saving, rest: large.zip.subarray(half) };
  }

  it('a process that starts while another is mid-save leaves that save alone, whatever the pids', async () => {
    const a = await start('storage', storageEnv(), READY);
    const { zip, saving, rest } = await halfSaved(a);
    const inFlight = await workFiles(storageDir);

    // Start-up recovery of a second process on the same directory.
    const b = await start('storage', storageEnv(), READY);
    const reader = client(b);
    expect(await reader.exists(large.module, large.version)).toBe(false);
    expect(await workFiles(storageDir)).toEqual(inFlight);
    expect(await readdir(join(storageDir, '.leases'))).toHaveLength(2);

    zip.end(rest);
    expect(await saving).toBe('saved');
    expect(sha256(await readAll((await reader.zip(large.module, large.version)).stream))).toBe(
      large.zipSha256,
    );
    expect(await workFiles(storageDir)).toEqual({});
  }, 120_000);

  it('a process that starts after another died mid-save removes its work once its lease has expired', async () => {
    const a = await start('storage', storageEnv(), READY);
    const { saving } = await halfSaved(a);
    const exited = once(a.child, 'exit');
    a.child.kill('SIGKILL');
    await exited;
    expect(await saving).toBeInstanceOf(Error);
    const [deadLease] = await readdir(join(storageDir, '.leases'));
    const left = await workDirs(storageDir);
    expect(left).toHaveLength(1);

    // Its lease still looks fresh: a process starting right now must keep its work.
    const b = await start('storage', storageEnv(), READY);
    expect(await workDirs(storageDir)).toEqual(left);
    const code = await b.stop();
    expect(code, `${String(b.child.signalCode)} ${b.stdout()} ${b.stderr()}`).toBe(0);

    // Not renewed for longer than the expiry (two minutes): the next start removes it all.
    const longAgo = new Date(Date.now() - 3_600_000);
    await utimes(join(storageDir, '.leases', deadLease ?? ''), longAgo, longAgo);
    const c = await start('storage', storageEnv(), READY);
    expect(await workDirs(storageDir)).toEqual([]);
    expect(await readdir(join(storageDir, '.leases'))).not.toContain(deadLease);
    const reader = client(c);
    expect(await reader.exists(large.module, large.version)).toBe(false);
    expect(await reader.catalog({ pageSize: 10 })).toEqual({ entries: [] });
  }, 120_000);

  it('a proxy that starts while another is mid-fetch leaves its temp directory alone and removes only old leftovers', async () => {
    const upstream = await PausingGoproxy.start(join(sandbox, 'upstream'));
    try {
      const env = { PORT: '0', STORAGE_DIR: storageDir, UPSTREAM: upstream.url };
      const tmp = join(sandbox, 'tmp');
      // Left by a process that crashed hours ago: a go command's GOPATH and an upstream zip.
      const longAgo = new Date(Date.now() - 3 * 3_600_000);
      for (const old of ['modproxy-direct-crashed', 'goproxy-fetch-crashed']) {
        await mkdir(join(tmp, old, 'gopath'), { recursive: true });
        await utimes(join(tmp, old), longAgo, longAgo);
      }
      const a = await start('proxy', env, /export GOPROXY=(\S+)/);
      await expect.poll(async () => (await readdir(tmp)).filter((n) => n.endsWith('-crashed'))).toEqual([]);

      const half = 8 * MiB;
      const pause = upstream.pauseAfter(large.zipUrlPath, half);
      const download = rawRequest(a.match[1] ?? '', large.zipUrlPath);
      await pause.reached;
      const fetching = async () => (await readdir(tmp)).filter((n) => n.startsWith('goproxy-fetch-'));
      await expect.poll(fetching).toHaveLength(1);
      const live = await fetching();

      // One more old leftover, so that b's start-up sweep says when it has looked at everything.
      await mkdir(join(tmp, 'goproxy-fetch-crashed-too'));
      await utimes(join(tmp, 'goproxy-fetch-crashed-too'), longAgo, longAgo);
      const b = await start('proxy', { ...env, LOG_LEVEL: 'info' }, /export GOPROXY=(\S+)/);
      await expect
        .poll(() => b.stdout())
        .toMatch(/"count":1,"msg":"removed leftover fetch temp directories"/);
      expect(await fetching()).toEqual(live);

      pause.resume();
      const answer = await download;
      expect(answer.status).toBe(200);
      expect(sha256(answer.body)).toBe(large.zipSha256);
      await expect.poll(fetching).toEqual([]);
    } finally {
      await upstream.stop();
    }
  }, 120_000);
});
