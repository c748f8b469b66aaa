import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { DelayedError } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { errors } from '@modproxy/errors';
import { startRedisServer, waitUntil, type RedisServer, moduleErrorOf } from '@modproxy/testing';
import { FetchQueue } from './fetch-queue';
import { JobWorker, type JobMiddleware } from './job-worker';
import { FETCH_BACKOFF_MS } from './job-options';
import { FETCH_QUEUE } from './queue-names';
import { createQueueRedis } from './redis-connection';

const MODULE = 'example.test/hello.git';
const VERSION = 'v1.1.0';

interface Gate {
  opened: Promise<void>;
  open(): void;
}

function gate(): Gate {
  let open = () => undefined as void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

describe('FetchQueue (real Redis)', () => {
  let redis: RedisServer;
  let prefix: string;
  const closers: Array<() => Promise<unknown>> = [];

  const connect = (): Redis => {
    const connection = createQueueRedis(redis.url);
    closers.push(async () => {
      await connection.quit().catch(() => undefined);
      connection.disconnect();
    });
    return connection;
  };

  /** A producer as one replica has it: its own connection and its own QueueEvents. */
  const producer = (options: { pollIntervalMs?: number } = {}): FetchQueue => {
    const queue = new FetchQueue({ connection: connect(), prefix, ...options });
    closers.unshift(() => queue.close());
    return queue;
  };

  /** A worker whose FetchVersion handler is `handle`; counts its calls. */
  const worker = async (
    handle: (module: string, version: string) => Promise<unknown>,
    options: { concurrency?: number; middleware?: JobMiddleware[] } = {},
  ) => {
    const calls: string[] = [];
    const started = new JobWorker({
      queueName: FETCH_QUEUE,
      connection: connect(),
      prefix,
      concurrency: options.concurrency ?? 4,
      ...(options.middleware ? { middleware: options.middleware } : {}),
      handlers: {
        FetchVersion: async ({ module, version }) => {
          calls.push(`${module}@${version}`);
          return handle(module, version);
        },
      },
    });
    closers.unshift(() => started.close(1_000));
    await started.start();
    return { worker: started, calls };
  };

  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  beforeEach(() => {
    prefix = `test-${randomUUID().slice(0, 8)}`;
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  it('makes one job of every replica’s add of one version, with module@version as its id', async () => {
    const replicas = [producer(), producer(), producer()];
    const added = await Promise.all(
      replicas.flatMap((replica) => Array.from({ length: 20 }, () => replica.add(MODULE, VERSION))),
    );
    expect(new Set(added.map((entry) => entry.jobId))).toEqual(new Set([`${MODULE}@${VERSION}`]));
    const counts = await replicas[0]!.queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized');
    expect(counts['waiting']).toBe(1);
    const job = await replicas[0]!.queue.getJob(`${MODULE}@${VERSION}`);
    expect(job?.name).toBe('FetchVersion');
    expect(job?.data).toMatchObject({ module: MODULE, version: VERSION });
  });

  it('answers many waiters on several replicas with one job run, and all of them get its result', async () => {
    const release = gate();
    const running = gate();
    const { calls } = await worker(async () => {
      running.open();
      await release.opened;
      return { result: 'fetched' };
    });
    const replicas = [producer(), producer(), producer()];
    const waits = replicas.flatMap((replica) =>
      Array.from({ length: 30 }, () => replica.fetchAndWait(MODULE, VERSION, { timeoutMs: 30_000 })),
    );
    await running.opened;
    // The job runs as soon as the first add lands; the other replicas' waiters register as their
    // calls reach Redis, all before the job is released.
    await waitUntil(() => replicas.reduce((sum, replica) => sum + replica.waiters, 0) === 90);
    release.open();
    const results = await Promise.all(waits);
    expect(results).toHaveLength(90);
    expect(new Set(results.map((result) => result.result))).toEqual(new Set(['fetched']));
    expect(calls).toEqual([`${MODULE}@${VERSION}`]);
    expect(replicas.map((replica) => replica.waiters)).toEqual([0, 0, 0]);
  });

  it('resolves at once when the job had already completed before anyone waited (no second run)', async () => {
    const { worker: running, calls } = await worker(async () => ({ result: 'fetched' }));
    const queue = producer();
    expect(await queue.fetchAndWait(MODULE, VERSION)).toEqual({ result: 'fetched' });
    // No worker any more: only the completed job can answer.
    await running.close(1_000);
    const late = producer();
    expect(await late.fetchAndWait(MODULE, VERSION, { timeoutMs: 10_000 })).toEqual({ result: 'fetched' });
    expect(calls).toHaveLength(1);
  });

  it('fails every waiter with the worker’s error kind, and a later add runs the job again', async () => {
    let answer: 'missing' | 'there' = 'missing';
    const release = gate();
    const { calls } = await worker(async (module, version) => {
      await release.opened;
      if (answer === 'missing') {
        throw errors.notFound('upstream.direct.fetch', `${module}@${version}: unknown revision`, {
          module,
          version,
        });
      }
      return { result: 'fetched' };
    });
    const replicas = [producer(), producer()];
    // Every waiter's add must land before the job fails: a later one would retry the failed job
    // (a second run). Counted from the adds' own events, not guessed with expect.poll's 1 s.
    let added = 0;
    for (const replica of replicas) replica.queue.on('waiting', () => (added += 1));
    const waits = replicas.flatMap((replica) =>
      Array.from({ length: 10 }, () =>
        moduleErrorOf(replica.fetchAndWait(MODULE, 'v1.99.0', { timeoutMs: 30_000 })),
      ),
    );
    await waitUntil(() => added === 20 && calls.length === 1, {
      what: 'every waiter added the job, and it runs',
      timeoutMs: 30_000,
    });
    release.open();
    const failures = await Promise.all(waits);
    for (const failure of failures) {
      expect(failure.kind).toBe('not-found');
      expect(failure.message).toBe(`${MODULE}@v1.99.0: unknown revision`);
      expect(failure).toMatchObject({ module: MODULE, version: 'v1.99.0' });
    }
    expect(calls).toHaveLength(1);
    expect(await replicas[0]!.queue.getJobState(`${MODULE}@v1.99.0`)).toBe('failed');

    // The failure is kept for dashboards but answers nobody: the next request runs it again.
    answer = 'there';
    expect(await replicas[1]!.fetchAndWait(MODULE, 'v1.99.0', { timeoutMs: 30_000 })).toEqual({
      result: 'fetched',
    });
    expect(calls).toHaveLength(2);
  });

  it('retries a failure another attempt may mend after its backoff, by itself: the waiter has the first failure, the next request the success', async () => {
    let attempts = 0;
    await worker(async (module, version) => {
      attempts += 1;
      if (attempts === 1)
        throw errors.badGateway('upstream.goproxy.zip', `${module}@${version}: upstream failed`);
      return { result: 'fetched' };
    });
    // The producers' own retry options: 5 attempts, backoff from 2 s.
    const queue = producer();
    const failure = await moduleErrorOf(queue.fetchAndWait(MODULE, VERSION, { timeoutMs: 30_000 }));
    expect([failure.kind, failure.message]).toEqual(['bad-gateway', `${MODULE}@${VERSION}: upstream failed`]);
    const job = await queue.queue.getJob(`${MODULE}@${VERSION}`);
    expect([await job?.getState(), job?.attemptsMade, job?.delay]).toEqual(['delayed', 1, FETCH_BACKOFF_MS]);
    await expect
      .poll(() => queue.queue.getJobState(`${MODULE}@${VERSION}`), { timeout: 30_000 })
      .toBe('completed');
    expect(await queue.fetchAndWait(MODULE, VERSION, { timeoutMs: 30_000 })).toEqual({ result: 'fetched' });
    expect(attempts).toBe(2);
  });

  it('at its deadline answers timeout, or the failure of the last attempt when the job waits for a retry', async () => {
    const queue = producer();
    // No worker: nothing ever runs.
    const idle = await moduleErrorOf(queue.fetchAndWait(MODULE, VERSION, { timeoutMs: 300 }));
    expect(idle.kind).toBe('timeout');
    expect(idle.message).toMatch(/not fetched within 300 ms/);

    const failing = gate();
    await worker(async (module, version) => {
      failing.open();
      throw errors.badGateway('upstream.goproxy.zip', `${module}@${version}: upstream answered 500`);
    });
    const slowRetries = new FetchQueue({
      connection: connect(),
      prefix,
      jobOptions: { attempts: 3, backoff: { type: 'fixed', delay: 600_000 } },
    });
    closers.unshift(() => slowRetries.close());
    const waiting = moduleErrorOf(slowRetries.fetchAndWait(MODULE, 'v1.0.0', { timeoutMs: 2_000 }));
    await failing.opened;
    const failure = await waiting;
    expect(failure.kind).toBe('bad-gateway');
    expect(failure.message).toBe(`${MODULE}@v1.0.0: upstream answered 500`);
  });

  it('answers every waiter with the first failed attempt’s failure at once, while the job’s retry later stores it for the next request', async () => {
    let upstreamUp = false;
    const { calls } = await worker(async (module, version) => {
      if (!upstreamUp) {
        throw errors.unavailable('upstream.goproxy.zip', `${module}@${version}: upstream answered 503`, {
          retryAfterSeconds: 7,
        });
      }
      return { result: 'fetched' };
    });
    // A backoff no test waits out: only the job's scheduled retry can run it again.
    const replicas = [0, 1].map(() => {
      const queue = new FetchQueue({
        connection: connect(),
        prefix,
        jobOptions: { attempts: 3, backoff: { type: 'fixed', delay: 600_000 } },
      });
      closers.unshift(() => queue.close());
      return queue;
    });
    const jobId = `${MODULE}@${VERSION}`;
    const failures = await Promise.all(
      replicas.flatMap((replica) =>
        Array.from({ length: 5 }, () =>
          moduleErrorOf(replica.fetchAndWait(MODULE, VERSION, { timeoutMs: 300_000 })),
        ),
      ),
    );
    for (const failure of failures) {
      expect(failure).toMatchObject({
        kind: 'unavailable',
        message: `${jobId}: upstream answered 503`,
        retryAfterSeconds: 7,
        module: MODULE,
        version: VERSION,
      });
    }
    // Answered after the first attempt, before the retry the backoff schedules: the job waits for it.
    const job = await replicas[0]!.queue.getJob(jobId);
    expect([await job?.getState(), job?.attemptsMade, calls.length]).toEqual(['delayed', 1, 1]);
    expect(replicas.map((replica) => replica.waiters)).toEqual([0, 0]);

    // Asked while the job waits for its retry: the same answer at once, and no second job.
    const late = await moduleErrorOf(replicas[1]!.fetchAndWait(MODULE, VERSION, { timeoutMs: 300_000 }));
    expect([late.kind, late.message]).toEqual(['unavailable', `${jobId}: upstream answered 503`]);
    expect(calls).toHaveLength(1);

    // The upstream recovers and the backoff ends: the job's own retry fetches, and the next
    // request is served from it without another run.
    upstreamUp = true;
    await job!.promote();
    await expect.poll(() => replicas[0]!.queue.getJobState(jobId), { timeout: 30_000 }).toBe('completed');
    expect(await replicas[1]!.fetchAndWait(MODULE, VERSION, { timeoutMs: 30_000 })).toEqual({
      result: 'fetched',
    });
    expect(calls).toHaveLength(2);
  });

  it('keeps waiting when the job is only put off without a failed attempt (a host limit), and answers with its end', async () => {
    let putOff = 0;
    // Puts every job off once, as the per-host gate does for a host at its limit: no attempt spent.
    const hostLimit: JobMiddleware = async (_name, _message, { job, token }, next) => {
      if (putOff === 0) {
        putOff += 1;
        await job.moveToDelayed(Date.now() + 200, token);
        throw new DelayedError();
      }
      return next();
    };
    const { calls } = await worker(async () => ({ result: 'fetched' }), { middleware: [hostLimit] });
    const queue = producer();
    expect(await queue.fetchAndWait(MODULE, VERSION, { timeoutMs: 30_000 })).toEqual({ result: 'fetched' });
    expect([putOff, calls.length]).toEqual([1, 1]);
  });

  it('lets a caller leave without cancelling the job for the others', async () => {
    const release = gate();
    const running = gate();
    const { calls } = await worker(async () => {
      running.open();
      await release.opened;
      return { result: 'fetched' };
    });
    const queue = producer();
    const leaving = new AbortController();
    const left = moduleErrorOf(queue.fetchAndWait(MODULE, VERSION, { signal: leaving.signal }));
    const staying = queue.fetchAndWait(MODULE, VERSION);
    await running.opened;
    leaving.abort();
    expect((await left).kind).toBe('cancelled');
    release.open();
    expect(await staying).toEqual({ result: 'fetched' });
    expect(calls).toHaveLength(1);
  });

  it('queues the job again when it vanished while a caller waited (Redis lost it), and the caller gets the new run’s answer', async () => {
    const queue = producer({ pollIntervalMs: 50 });
    // The add's own event, not a poll with expect.poll's 1 s: the waiter's event reader starts
    // before it adds, and on a busy machine that took longer ('unknown' at the deadline).
    const queued = once(queue.queue, 'waiting');
    const waiting = queue.fetchAndWait(MODULE, VERSION, { timeoutMs: 30_000 });
    await queued;
    // The job and its events vanish, as when Redis restarts without persistence.
    const events = `${prefix}:${FETCH_QUEUE}:events`;
    const raw = connect();
    await raw.del(events);
    const job = await queue.queue.getJob(`${MODULE}@${VERSION}`);
    await job!.remove();
    // Gone entirely (e.g. Redis lost it): the waiter queues it again, and a worker answers it.
    const { calls } = await worker(async () => ({ result: 'already-stored' }));
    expect(await waiting).toEqual({ result: 'already-stored' });
    expect(calls).toEqual([`${MODULE}@${VERSION}`]);
  });

  it('refuses a malformed module path or a non-canonical version before queueing anything', async () => {
    const queue = producer();
    expect((await moduleErrorOf(queue.add('Example.test/../x', VERSION))).kind).toBe('invalid-argument');
    expect((await moduleErrorOf(queue.fetchAndWait(MODULE, 'latest'))).kind).toBe('invalid-argument');
    expect(await queue.queue.getJobCounts('waiting')).toEqual({ waiting: 0 });
  });
});
