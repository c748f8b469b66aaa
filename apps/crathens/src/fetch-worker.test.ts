import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hashGoMod, verifyModuleZip } from '@modproxy/modzip';
import { FETCH_BACKOFF_MS } from '@modproxy/queue';
import {
  createTempDir,
  exportFixturesAsGoproxy,
  removeDir,
  StaticGoproxy,
  waitUntil,
  moduleErrorOf,
} from '@modproxy/testing';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CrathensHarness } from './test-support/crathens-harness';

describe('crathens fetch worker (Redis, the storage service and lathens over gRPC, fixture repositories)', () => {
  let harness: CrathensHarness;

  beforeAll(async () => {
    harness = await CrathensHarness.start();
  });
  afterEach(async () => {
    await harness?.cleanUp();
  });
  afterAll(async () => {
    await harness?.stop();
  });

  it('stores a FetchVersion job’s version byte for byte as the go command downloads it, tells lathens, and does nothing upstream for it a second time', async () => {
    const { hello } = harness.fixtures;
    const lathens = await harness.startLathens();
    // lathens' upstream knows only v1.0.0, and its answer is cached for an hour: only crathens'
    // Observe can make v1.1.0 appear in the list now.
    await lathens.publishList(hello.path, ['v1.0.0']);
    expect((await lathens.client.list(hello.path)).versions).toEqual(['v1.0.0']);

    const prefix = harness.newPrefix();
    const { upstream } = await harness.startInProcess(prefix);
    const producer = harness.producer(prefix);
    expect(await producer.fetchAndWait(hello.path, 'v1.1.0', { timeoutMs: 120_000 })).toEqual({
      result: 'fetched',
    });

    const direct = await harness.directDownload(hello.path, 'v1.1.0');
    const stored = await harness.storedZip(hello.path, 'v1.1.0');
    expect(stored.equals(direct.zip)).toBe(true);
    const zipFile = join(await createTempDir('crathens-zip-'), 'stored.zip');
    try {
      await writeFile(zipFile, stored);
      expect((await verifyModuleZip(zipFile, hello.path, 'v1.1.0')).h1).toBe(direct.sum);
    } finally {
      await removeDir(join(zipFile, '..'));
    }
    const mod = await harness.inspector.mod(hello.path, 'v1.1.0');
    expect(mod.equals(direct.mod)).toBe(true);
    expect(hashGoMod(mod)).toMatch(/^h1:/);
    expect((await lathens.client.list(hello.path)).versions).toEqual(['v1.0.0', 'v1.1.0']);
    expect(upstream.fetches).toEqual([`${hello.path}@v1.1.0`]);

    // Once its completed job is gone, a new job for the version finds it stored: no upstream call.
    await producer.queue.remove(`${hello.path}@v1.1.0`);
    expect(await producer.fetchAndWait(hello.path, 'v1.1.0', { timeoutMs: 60_000 })).toEqual({
      result: 'already-stored',
    });
    expect(upstream.fetches).toEqual([`${hello.path}@v1.1.0`]);
  });

  it('refuses a job whose zip has another go.mod than the one a proxy served, counts it, and stores nothing', async () => {
    const { hello } = harness.fixtures;
    const prefix = harness.newPrefix();
    const { crathens } = await harness.startInProcess(prefix);
    const producer = harness.producer(prefix);
    const served = createHash('sha256').update('module example.test/someone-else\n').digest('hex');
    const failure = await moduleErrorOf(
      producer.fetchAndWait(hello.path, 'v1.0.0', { timeoutMs: 120_000, goModSha256: served }),
    );
    expect(failure.kind).toBe('bad-gateway');
    expect(failure.message).toMatch(/go\.mod other than the one already served/);
    expect(await harness.inspector.exists(hello.path, 'v1.0.0')).toBe(false);
    const metrics = await (await fetch(`${crathens.adminUrl}/metrics`)).text();
    expect(Number(/^crathens_go_mod_mismatches_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    // A new job for the version, the refused one gone:
    await producer.queue.remove(`${hello.path}@v1.0.0`);
    // With the go.mod the go command itself downloads, the version is stored.
    const direct = await harness.directDownload(hello.path, 'v1.0.0');
    const right = createHash('sha256').update(direct.mod).digest('hex');
    expect(
      await producer.fetchAndWait(hello.path, 'v1.0.0', { timeoutMs: 120_000, goModSha256: right }),
    ).toEqual({ result: 'fetched' });
    expect((await harness.inspector.mod(hello.path, 'v1.0.0')).equals(direct.mod)).toBe(true);
  });

  it('answers 4 producers x 25 concurrent waiters for one cold version, over two crathens replicas, with exactly one upstream fetch', async () => {
    const { majorV2 } = harness.fixtures;
    const prefix = harness.newPrefix();
    // Two crathens replicas, each running up to 4 fetches at once.
    const first = await harness.startInProcess(prefix);
    const second = await harness.startInProcess(prefix);
    const producers = Array.from({ length: 4 }, () => harness.producer(prefix));
    const waits = producers.flatMap((producer) =>
      Array.from({ length: 25 }, () => producer.fetchAndWait(majorV2.path, 'v2.1.0', { timeoutMs: 120_000 })),
    );
    const results = await Promise.all(waits);
    expect(results).toHaveLength(100);
    expect(results.every((result) => result.result === 'fetched')).toBe(true);
    expect([...first.upstream.fetches, ...second.upstream.fetches]).toEqual([`${majorV2.path}@v2.1.0`]);
    const direct = await harness.directDownload(majorV2.path, 'v2.1.0');
    expect((await harness.storedZip(majorV2.path, 'v2.1.0')).equals(direct.zip)).toBe(true);
  });

  it('fails every waiter of an unknown version with not-found, without retries, and a later add fetches again', async () => {
    const { hello } = harness.fixtures;
    const prefix = harness.newPrefix();
    const { upstream } = await harness.startInProcess(prefix);
    const producers = [harness.producer(prefix), harness.producer(prefix)];
    const failures = await Promise.all(
      producers.flatMap((producer) =>
        Array.from({ length: 10 }, () =>
          moduleErrorOf(producer.fetchAndWait(hello.path, 'v1.99.0', { timeoutMs: 120_000 })),
        ),
      ),
    );
    for (const failure of failures) {
      expect(failure.kind).toBe('not-found');
      expect(failure.message).toContain('v1.99.0');
    }
    expect(upstream.fetches).toEqual([`${hello.path}@v1.99.0`]);
    expect(await harness.inspector.exists(hello.path, 'v1.99.0')).toBe(false);

    // The version appears upstream; the failure is not remembered, the next request fetches it.
    await hello.repo.tag('v1.99.0');
    expect(await producers[0]!.fetchAndWait(hello.path, 'v1.99.0', { timeoutMs: 120_000 })).toEqual({
      result: 'fetched',
    });
    expect(upstream.fetches).toEqual([`${hello.path}@v1.99.0`, `${hello.path}@v1.99.0`]);
    expect(await harness.inspector.exists(hello.path, 'v1.99.0')).toBe(true);
  });

  it('answers a waiter with the first attempt’s failure while upstream fails for a while, and the job’s own retry stores the version for the next request', async () => {
    const { hello } = harness.fixtures;
    const goproxyDir = await createTempDir('crathens-flaky-upstream-');
    const flaky = await StaticGoproxy.start(goproxyDir);
    try {
      await exportFixturesAsGoproxy(harness.fixtures, goproxyDir, { modules: [hello] });
      // Stored by an earlier test of this file (the storage service is shared): cold again.
      await harness.inspector.delete(hello.path, 'v1.0.0').catch(() => undefined);
      await flaky.setMode('500');
      const prefix = harness.newPrefix();
      const { upstream } = await harness.startInProcess(prefix, { UPSTREAM: flaky.url });
      const producer = harness.producer(prefix);
      const jobId = `${hello.path}@v1.0.0`;

      const failure = await moduleErrorOf(
        producer.fetchAndWait(hello.path, 'v1.0.0', { timeoutMs: 120_000 }),
      );
      expect(failure.kind).toBe('bad-gateway');
      expect(failure.message).toContain(`${hello.path}@v1.0.0`);
      // Answered by the first attempt, before the retry the backoff schedules for it.
      const job = await producer.queue.getJob(jobId);
      expect([await job?.getState(), job?.attemptsMade, job?.delay]).toEqual([
        'delayed',
        1,
        FETCH_BACKOFF_MS,
      ]);
      expect(upstream.fetches).toEqual([jobId]);

      // Upstream recovers; nobody asks again, and the job's retry stores the version.
      await flaky.setMode('ok');
      await waitUntil(() => harness.inspector.exists(hello.path, 'v1.0.0'), {
        what: 'the retry stored v1.0.0',
        timeoutMs: 60_000,
      });
      expect(upstream.fetches).toEqual([jobId, jobId]);
      await expect.poll(() => producer.queue.getJobState(jobId)).toBe('completed');
      expect(await producer.fetchAndWait(hello.path, 'v1.0.0', { timeoutMs: 60_000 })).toEqual({
        result: 'fetched',
      });
      const direct = await harness.directDownload(hello.path, 'v1.0.0');
      expect((await harness.storedZip(hello.path, 'v1.0.0')).equals(direct.zip)).toBe(true);
      expect(upstream.fetches).toEqual([jobId, jobId]);
    } finally {
      await flaky.stop();
      await removeDir(goproxyDir);
    }
  });

  it('counts attempts by queue, job name and outcome in /metrics, with queue depths and no module path in any label', async () => {
    const { hello } = harness.fixtures;
    const prefix = harness.newPrefix();
    const { crathens } = await harness.startInProcess(prefix);
    const producer = harness.producer(prefix);
    await producer.fetchAndWait(hello.path, 'v1.0.0', { timeoutMs: 120_000 });
    await moduleErrorOf(producer.fetchAndWait(hello.path, 'v1.98.0', { timeoutMs: 120_000 }));

    expect(await (await fetch(`${crathens.adminUrl}/healthz`)).text()).toBe('ok\n');
    const ready = await fetch(`${crathens.adminUrl}/readyz`);
    expect([ready.status, await ready.text()]).toEqual([200, 'ok\n']);
    const metrics = await (await fetch(`${crathens.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /crathens_job_attempts_total\{queue="fetch",name="FetchVersion",outcome="completed"\} 1/,
    );
    expect(metrics).toMatch(
      /crathens_job_attempts_total\{queue="fetch",name="FetchVersion",outcome="failed"\} 1/,
    );
    expect(metrics).toMatch(
      /crathens_job_duration_seconds_count\{queue="fetch",name="FetchVersion",outcome="completed"\} 1/,
    );
    expect(metrics).toMatch(/crathens_queue_jobs\{queue="fetch",state="completed"\} 1/);
    expect(metrics).toMatch(/crathens_queue_jobs\{queue="fetch",state="failed"\} 1/);
    expect(metrics).toMatch(/crathens_queue_jobs\{queue="fetch",state="waiting"\} 0/);
    expect(metrics).not.toContain('example.test');
  });

  it('starts while the queue Redis is unreachable, says so on /readyz, answers /metrics, and still shuts down', async () => {
    const prefix = harness.newPrefix();
    const { crathens } = await harness.startInProcess(prefix, {
      QUEUE_REDIS_URL: 'redis://127.0.0.1:9',
      SHUTDOWN_TIMEOUT_MS: '200',
    });
    const ready = await fetch(`${crathens.adminUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toMatch(/^not ready: queue Redis is (connecting|reconnecting)/);
    // /metrics answers, without the queue depths it cannot read, instead of waiting for Redis.
    const metrics = await fetch(`${crathens.adminUrl}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toContain('crathens_job_attempts_total');
    expect(text).not.toMatch(/^crathens_queue_jobs\{/m);
    await crathens.shutdown();
    await expect(fetch(`${crathens.adminUrl}/healthz`)).rejects.toThrow();
  });

  it('is not ready while the storage service is unreachable, and names it', async () => {
    const prefix = harness.newPrefix();
    const { crathens } = await harness.startInProcess(prefix, { STORAGE_GRPC_URL: '127.0.0.1:9' });
    const ready = await fetch(`${crathens.adminUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toMatch(/^not ready: /);
    expect((await fetch(`${crathens.adminUrl}/healthz`)).status).toBe(200);
  });
});
