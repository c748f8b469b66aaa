import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { type IncomingMessage, request } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { DiskStorage } from '@modproxy/storage';
import {
  type AppProcess,
  createTempDir,
  PausingGoproxy,
  rawRequest,
  removeDir,
  startAppProcess,
  writeLargeModule,
} from '@modproxy/testing';
import { GrpcVersions } from '@modproxy/versions-grpc';

const root = join(__dirname, '..', '..', '..');
const main = (app: string) => join(root, 'dist', 'apps', app, 'main.js');
const MiB = 1024 * 1024;
/** Long enough that a poll on a busy machine cannot miss the window in which readiness is off. */
const DELAY_MS = '5000';

/** A download read only when the test says so: a client on a very slow link. */
class SlowDownload {
  received = 0;
  private readonly chunks: Buffer[] = [];
  private constructor(private readonly response: IncomingMessage) {
    response.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.received += chunk.length;
    });
    response.pause();
  }

  static async start(url: string, path: string): Promise<SlowDownload> {
    const target = new URL(path, url);
    const req = request({ host: target.hostname, port: target.port, path, agent: false });
    req.end();
    const [response] = (await once(req, 'response')) as [IncomingMessage];
    return new SlowDownload(response);
  }

  get status(): number {
    return this.response.statusCode ?? 0;
  }

  /** Reads everything that is left; rejects if the connection is cut. */
  async finish(): Promise<Buffer> {
    const ended = new Promise<void>((resolve, reject) => {
      this.response.once('end', resolve);
      this.response.once('error', reject);
      this.response.once('aborted', () => reject(new Error('download cut off')));
    });
    this.response.resume();
    await ended;
    if (!this.response.complete) throw new Error('download cut off');
    return Buffer.concat(this.chunks);
  }
}

/** Resolves with true once a new connection to `url` is refused. */
async function refusesConnections(url: string): Promise<boolean> {
  try {
    await rawRequest(url, '/healthz', { agent: false });
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ECONNREFUSED';
  }
}

async function readyzStatus(url: string): Promise<number> {
  return (await rawRequest(url, '/readyz', { agent: false })).status;
}

describe('graceful shutdown on SIGTERM with downloads in flight (real processes)', () => {
  let sandbox: string;
  const running: AppProcess[] = [];

  beforeEach(async () => {
    sandbox = await createTempDir('e2e-shutdown-');
    for (const dir of ['storage', 'upstream', 'tmp', 'home', 'cwd']) await mkdir(join(sandbox, dir));
  });

  afterEach(async () => {
    for (const app of running.splice(0)) await app.stop();
    await removeDir(sandbox);
  });

  const base = () => ({
    PATH: process.env['PATH'] ?? '',
    HOME: join(sandbox, 'home'),
    TMPDIR: join(sandbox, 'tmp'),
    LOG_LEVEL: 'warn',
    SHUTDOWN_DELAY_MS: DELAY_MS,
    SHUTDOWN_TIMEOUT_MS: '120000',
  });

  it('the proxy: readiness off first, a slow 40 MiB zip download completes, new connections are refused, exit 0', async () => {
    const large = await writeLargeModule(join(sandbox, 'upstream'), { zipBytes: 40 * MiB });
    const storage = await DiskStorage.open({ root: join(sandbox, 'storage') });
    await storage.save({ ...large, zip: Readable.from([large.zip]) });
    await storage.close();
    const proxy = await startAppProcess(main('proxy'), {
      env: { ...base(), PORT: '0', STORAGE_DIR: join(sandbox, 'storage'), UPSTREAM: 'off' },
      cwd: join(sandbox, 'cwd'),
      ready: /export GOPROXY=(\S+)/,
    });
    running.push(proxy);
    const url = proxy.match[1] ?? '';
    expect(await readyzStatus(url)).toBe(200);

    const download = await SlowDownload.start(url, large.zipUrlPath);
    expect(download.status).toBe(200);
    const exited = once(proxy.child, 'exit') as Promise<[number | null]>;
    proxy.child.kill('SIGTERM');

    await expect.poll(() => readyzStatus(url), { timeout: 30_000 }).toBe(503);
    expect(download.received).toBeLessThan(large.zip.length);
    await expect.poll(() => refusesConnections(url), { timeout: 30_000 }).toBe(true);
    expect(download.received).toBeLessThan(large.zip.length);

    const body = await download.finish();
    expect(body.length).toBe(large.zip.length);
    expect(createHash('sha256').update(body).digest('hex')).toBe(large.zipSha256);
    expect((await exited)[0]).toBe(0);
  }, 180_000);

  it('lathens: readiness off first (HTTP and gRPC health), a list in flight is answered, new connections are refused, exit 0', async () => {
    const module = 'example.test/many';
    const versions = Array.from({ length: 100_000 }, (_, i) => `v1.${Math.floor(i / 1000)}.${i % 1000}`);
    const listBody = versions.map((version) => `${version}\n`).join('');
    await mkdir(join(sandbox, 'upstream', module, '@v'), { recursive: true });
    await writeFile(join(sandbox, 'upstream', module, '@v', 'list'), listBody);
    const upstream = await PausingGoproxy.start(join(sandbox, 'upstream'));
    try {
      const token = randomBytes(24).toString('hex');
      const lathens = await startAppProcess(main('lathens'), {
        env: {
          ...base(),
          REDIS_URL: inject('redisUrl'),
          KEY_PREFIX: `shutdown-${randomBytes(4).toString('hex')}:`,
          GRPC_PORT: '0',
          HTTP_PORT: '0',
          GRPC_TOKEN: token,
          UPSTREAM: upstream.url,
          STORAGE_TYPE: 'none',
        },
        cwd: join(sandbox, 'cwd'),
        ready: /lathens listening: grpc (\S+) http (\S+)/,
      });
      running.push(lathens);
      const url = lathens.match[2] ?? '';
      const health = new GrpcVersions({ url: lathens.match[1] ?? '', token });
      try {
        await expect.poll(() => readyzStatus(url)).toBe(200);
        await expect.poll(() => health.serving()).toBe(true);

        const pause = upstream.pauseAfter(`/${module}/@v/list`, 64 * 1024);
        const answer = rawRequest(url, `/${module}/@v/list`, { agent: false });
        await pause.reached;
        const exited = once(lathens.child, 'exit') as Promise<[number | null]>;
        lathens.child.kill('SIGTERM');

        await expect.poll(() => readyzStatus(url), { timeout: 30_000 }).toBe(503);
        await expect.poll(() => health.serving(), { timeout: 30_000 }).toBe(false);
        await expect.poll(() => refusesConnections(url), { timeout: 30_000 }).toBe(true);

        pause.resume();
        const listed = await answer;
        expect(listed.status).toBe(200);
        expect(listed.body.toString()).toBe(listBody);
        expect((await exited)[0]).toBe(0);
      } finally {
        await health.close();
      }
    } finally {
      await upstream.stop();
    }
  }, 180_000);
});
