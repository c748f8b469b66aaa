import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { appNodeArgs, type FixtureModule, getFreePort, startRedisServer } from '@modproxy/testing';
import { CrathensHarness, crathensMain } from './test-support/crathens-harness';
import { HoldingGo } from './test-support/holding-go';

/** Short locks, so a killed worker's job is picked up again within seconds. */
const FAST_RECOVERY = { JOB_LOCK_DURATION_MS: '2000', JOB_STALLED_INTERVAL_MS: '1000' };

/**
 * Watches storage for module@version while a test runs: every time the version is visible,
 * its zip is read and compared with the complete one. Any visible-but-wrong read is recorded.
 */
function watchStorage(
  harness: CrathensHarness,
  module: string,
  version: string,
  complete: () => Buffer | undefined,
) {
  const seen = { visible: 0, incomplete: 0 };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      if (await harness.inspector.exists(module, version).catch(() => false)) {
        seen.visible += 1;
        const zip = await harness.storedZip(module, version).catch(() => undefined);
        const expected = complete();
        if (!zip || !expected || !zip.equals(expected)) seen.incomplete += 1;
      }
      // Polling storage as a client would; no assertion depends on this pace.
      await delay(10);
    }
  })();
  return {
    seen,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

describe('the crathens process (SIGKILL, SIGTERM, configuration)', () => {
  let harness: CrathensHarness;
  const holds: HoldingGo[] = [];

  beforeAll(async () => {
    harness = await CrathensHarness.start();
  });
  const stops: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const hold of holds.splice(0)) await hold.remove();
    await harness?.cleanUp();
    for (const stop of stops.splice(0)) await stop();
  });
  afterAll(async () => {
    await harness?.stop();
  });

  const pick = (name: 'nested' | 'legacy' | 'mixedCase'): [FixtureModule, string] => {
    const fixture = harness.fixtures[name];
    return [fixture, fixture.latest];
  };

  it.each([
    ['while the go command downloads it', 'nested' as const],
    ['while it streams the zip to the storage service', 'legacy' as const],
  ])(
    'picks a fetch up again after its worker is SIGKILLed %s, completes it, and never shows a half-saved version',
    async (stage, name) => {
      const [fixture, version] = pick(name);
      const direct = await harness.directDownload(fixture.path, version);
      const prefix = harness.newPrefix();
      const hold = await HoldingGo.create();
      holds.push(hold);
      const holdingGo = stage.startsWith('while the go command');
      const saveBegun = holdingGo ? undefined : harness.saves.holdNextSave();
      const first = await harness.startProcess(prefix, {
        ...FAST_RECOVERY,
        ...(holdingGo ? { GO_BINARY: hold.binary } : {}),
      });
      const watch = watchStorage(harness, fixture.path, version, () => direct.zip);
      const producer = harness.producer(prefix);
      const fetched = producer.fetchAndWait(fixture.path, version, { timeoutMs: 120_000 });

      if (holdingGo) await expect.poll(() => hold.heldPid(), { timeout: 60_000 }).toBeGreaterThan(0);
      else await saveBegun;
      first.child.kill('SIGKILL');
      await once(first.child, 'exit');
      await hold.killHeld();
      expect(await harness.inspector.exists(fixture.path, version)).toBe(false);

      const second = await harness.startProcess(prefix, FAST_RECOVERY);
      expect(await fetched).toEqual({ result: 'fetched' });
      await expect.poll(() => watch.seen.visible).toBeGreaterThan(0);
      await watch.stop();
      expect((await harness.storedZip(fixture.path, version)).equals(direct.zip)).toBe(true);
      expect(watch.seen.incomplete).toBe(0);
      const metrics = await (await fetch(`${second.adminUrl}/metrics`)).text();
      expect(metrics).toMatch(/crathens_jobs_stalled_total\{queue="fetch"\} 1/);
      expect(await second.stop()).toBe(0);
    },
  );

  it('on SIGTERM stops being ready, lets the running fetch finish, and exits 0', async () => {
    const [fixture, version] = pick('mixedCase');
    const prefix = harness.newPrefix();
    const hold = await HoldingGo.create();
    holds.push(hold);
    const crathens = await harness.startProcess(prefix, {
      GO_BINARY: hold.binary,
      SHUTDOWN_TIMEOUT_MS: '60000',
    });
    expect((await fetch(`${crathens.adminUrl}/readyz`)).status).toBe(200);
    const producer = harness.producer(prefix);
    const fetched = producer.fetchAndWait(fixture.path, version, { timeoutMs: 120_000 });
    await expect.poll(() => hold.heldPid(), { timeout: 60_000 }).toBeGreaterThan(0);

    crathens.child.kill('SIGTERM');
    await expect.poll(async () => (await fetch(`${crathens.adminUrl}/readyz`)).status).toBe(503);
    expect(crathens.child.exitCode).toBeNull();
    await hold.release();
    const [code] = (await once(crathens.child, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(await fetched).toEqual({ result: 'fetched' });
    expect(await harness.inspector.exists(fixture.path, version)).toBe(true);
  });

  it('on SIGTERM hands a fetch still running after SHUTDOWN_TIMEOUT_MS back to the queue, exits 0, and another worker completes it', async () => {
    const { hello } = harness.fixtures;
    const prefix = harness.newPrefix();
    const hold = await HoldingGo.create();
    holds.push(hold);
    const crathens = await harness.startProcess(prefix, {
      GO_BINARY: hold.binary,
      SHUTDOWN_TIMEOUT_MS: '300',
    });
    const producer = harness.producer(prefix);
    const fetched = producer.fetchAndWait(hello.path, 'v1.10.0', { timeoutMs: 120_000 });
    await expect.poll(() => hold.heldPid(), { timeout: 60_000 }).toBeGreaterThan(0);

    crathens.child.kill('SIGTERM');
    const [code] = (await once(crathens.child, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(crathens.stdout()).toMatch(/fetch jobs still running at shutdown were handed back/);
    await hold.killHeld();
    const job = await producer.queue.getJob(`${hello.path}@v1.10.0`);
    expect(await job?.getState()).toBe('waiting');
    expect(job?.attemptsMade).toBe(0);

    await harness.startProcess(prefix);
    expect(await fetched).toEqual({ result: 'fetched' });
    expect((await producer.queue.getJob(`${hello.path}@v1.10.0`))?.attemptsMade).toBe(1);
  });

  it.each([
    ['unreachable (a closed loopback port)', async () => `redis://127.0.0.1:${await getFreePort()}`],
    [
      'refusing the password',
      async () => {
        const guarded = await startRedisServer({ password: `right-${randomUUID()}` });
        stops.push(() => guarded.stop());
        return `redis://:wrong-password@127.0.0.1:${guarded.port}`;
      },
    ],
    [
      'gone away while it ran',
      async () => {
        const redis = await startRedisServer();
        stops.push(() => redis.stop());
        return redis.url;
      },
    ],
  ])('exits 0 on SIGTERM when its queue Redis is %s', async (what, redisUrl) => {
    const url = await redisUrl();
    const crathens = await harness.startProcess(harness.newPrefix(), {
      QUEUE_REDIS_URL: url,
      SHUTDOWN_TIMEOUT_MS: '1000',
      LOG_LEVEL: 'info',
    });
    if (what.startsWith('gone')) {
      await expect.poll(async () => (await fetch(`${crathens.adminUrl}/readyz`)).status).toBe(200);
      await stops.pop()?.();
    }
    // SIGTERM as soon as the banner is out (the signal handlers are installed before it).
    // Far past SHUTDOWN_TIMEOUT_MS: a process still there then is hung, and is SIGKILLed (null).
    expect(await crathens.stop(30_000)).toBe(0);
    expect(crathens.stdout()).not.toContain('wrong-password');
  });

  it.each([
    [{ FETCH_CONCURRENCY: 'lots' }, /FETCH_CONCURRENCY: must be a number/],
    [{ STORAGE_GRPC_URL: '' }, /STORAGE_GRPC_URL: is required/],
    [
      { QUEUE_REDIS_URL: 'http://127.0.0.1:6379' },
      /QUEUE_REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/,
    ],
    [{ QUEUE_PREFIX: 'a:b' }, /QUEUE_PREFIX: must not contain ":"/],
    [{ UPSTREAM: 'off' }, /UPSTREAM: must not be off/],
    [{ JOB_LOCK_DURATION_MS: '-5' }, /JOB_LOCK_DURATION_MS: must be greater than 0/],
  ])(
    'refuses to start on a wrong value, naming the variable, with exit code 2: %o',
    async (wrong, message) => {
      const child = spawn(process.execPath, appNodeArgs(crathensMain), {
        env: harness.env(harness.newPrefix(), wrong),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(2);
      expect(stderr).toMatch(message);
      expect(stdout).not.toContain('crathens running');
    },
  );
});
