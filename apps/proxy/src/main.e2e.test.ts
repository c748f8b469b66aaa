import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appNodeArgs,
  createTempDir,
  getFreePort,
  type RedisServer,
  removeDir,
  runCommandOrThrow,
  startRedisServer,
} from '@modproxy/testing';
import { testWorkersEnv } from './test-support/test-proxy';

const root = join(__dirname, '..', '..', '..');
const main = join(root, 'dist', 'apps', 'proxy', 'main.js');

interface Started {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
}

function run(env: Record<string, string>): Started {
  const child = spawn(process.execPath, appNodeArgs(main), {
    cwd: root,
    env: { PATH: process.env['PATH'] ?? '', ...testWorkersEnv(), ...env },
    stdio: 'pipe',
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  return { child, stdout: () => out, stderr: () => err };
}

/** The built proxy, started the way `npm start` starts it. */
describe('the proxy process', () => {
  let storageDir: string;
  beforeAll(async () => {
    await runCommandOrThrow(process.execPath, [join(root, 'scripts', 'build-app.mjs'), 'proxy'], {
      cwd: root,
    });
    storageDir = await createTempDir('proxy-main-test-');
  });
  let redis: RedisServer | undefined;
  const queueRedis = async () => (redis ??= await startRedisServer());
  afterAll(async () => {
    await redis?.stop();
    await removeDir(storageDir);
  });

  it('prints the GOPROXY line, serves health, and stops cleanly on SIGTERM', async () => {
    const proxy = run({ PORT: '0', STORAGE_DIR: storageDir, LOG_LEVEL: 'warn' });
    await expect.poll(proxy.stdout, { timeout: 20_000 }).toMatch(/export GOPROXY=http:\/\/127\.0\.0\.1:\d+/);
    const url = /export GOPROXY=(\S+)/.exec(proxy.stdout())?.[1];
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('modproxy_http_requests_total{route="readyz",method="GET",status="200"} 1');
    proxy.child.kill('SIGTERM');
    const [code] = await once(proxy.child, 'exit');
    expect(code).toBe(0);
  });

  it.each([
    ['unreachable (a closed loopback port)', async () => `redis://127.0.0.1:${await getFreePort()}`],
    ['gone away while it ran', async () => (await queueRedis()).url],
  ])('exits 0 on SIGTERM when its queue Redis is %s', async (what, redisUrl) => {
    const proxy = run({
      PORT: '0',
      STORAGE_DIR: storageDir,
      QUEUE_REDIS_URL: await redisUrl(),
      SHUTDOWN_TIMEOUT_MS: '1000',
      LOG_LEVEL: 'warn',
    });
    await expect.poll(proxy.stdout, { timeout: 20_000 }).toMatch(/export GOPROXY=http:\/\/127\.0\.0\.1:\d+/);
    const url = /export GOPROXY=(\S+)/.exec(proxy.stdout())?.[1];
    if (what.startsWith('gone')) {
      await expect.poll(async () => (await fetch(`${url}/readyz`)).text()).toBe('ok\n');
      await redis?.stop();
    }
    const exited = once(proxy.child, 'exit');
    proxy.child.kill('SIGTERM');
    // Far past SHUTDOWN_TIMEOUT_MS: a process still there then is hung, and is SIGKILLed (null).
    const hung = setTimeout(() => proxy.child.kill('SIGKILL'), 30_000);
    const [code] = await exited;
    clearTimeout(hung);
    expect(code).toBe(0);
  });

  it.each([
    [{ PORT: 'eighty' }, /PORT: /],
    [{ UPSTREAM: 'ftp://proxy.invalid' }, /UPSTREAM: /],
    [
      { DOWNLOAD_MODE: 'sometimes' },
      /DOWNLOAD_MODE: must be one of sync, async, none, redirect, async_redirect/,
    ],
    [{ STORAGE_TYPE: 's3' }, /STORAGE_TYPE: must be disk, memory or grpc/],
    [{ STORAGE_TYPE: 'grpc' }, /STORAGE_GRPC_URL: is required when STORAGE_TYPE=grpc/],
    [
      { DOWNLOAD_MODE_FILE: '/nonexistent/modes.json' },
      /DOWNLOAD_MODE_FILE: cannot read \/nonexistent\/modes\.json: ENOENT/,
    ],
    [{ DOWNLOAD_MODE: 'redirect' }, /DOWNLOAD_REDIRECT_URL: is required when DOWNLOAD_MODE=redirect/],
    [{ WORKERS: 'many' }, /WORKERS: must be a whole number of processes from 1 to 256, or 0\/auto/],
    [{ WORKERS: '300' }, /WORKERS: must be a whole number of processes from 1 to 256/],
    [{ WORKERS: '2', STORAGE_TYPE: 'memory' }, /WORKERS: must be 1 \(or auto\) with STORAGE_TYPE=memory/],
    [
      { UPSTREAM_AUTHORIZATION: 'Bearer s3cret-token\r\nX-Injected: yes' },
      /UPSTREAM_AUTHORIZATION: must be a valid HTTP header value/,
    ],
  ])('refuses to start on a wrong value and names the variable: %o', async (env, message) => {
    const proxy = run({ STORAGE_DIR: storageDir, ...env });
    const [code] = await once(proxy.child, 'exit');
    expect(code).toBe(2);
    expect(proxy.stderr()).toMatch(message);
    expect(proxy.stdout()).not.toContain('GOPROXY=');
    expect(proxy.stdout() + proxy.stderr()).not.toContain('s3cret');
  });
});
