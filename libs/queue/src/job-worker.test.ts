import { randomUUID } from 'node:crypto';
import { DelayedError, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '@modproxy/testing';
import { jobContracts } from './job-contracts';
import { JobEvents, type JobOutcome } from './job-events';
import { JobWorker, type JobAttemptOutcome, type JobHandler, type JobWorkerOptions } from './job-worker';
import { FETCH_QUEUE } from './queue-names';
import { createQueueRedis } from './redis-connection';

const MODULE = 'example.test/hello.git';

function deferred<T = void>() {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

describe('JobWorker (real Redis)', () => {
  let redis: RedisServer;
  let prefix: string;
  let queue: Queue;
  let events: JobEvents;
  const closers: Array<() => Promise<unknown>> = [];

  const connect = (): Redis => {
    const connection = createQueueRedis(redis.url);
    closers.push(async () => {
      await connection.quit().catch(() => undefined);
      connection.disconnect();
    });
    return connection;
  };

  const startWorker = async (
    handle: JobHandler<'FetchVersion', unknown>,
    options: Partial<JobWorkerOptions<'FetchVersion'>> = {},
  ) => {
    const outcomes: JobAttemptOutcome[] = [];
    const stalled: string[] = [];
    const worker = new JobWorker({
      queueName: FETCH_QUEUE,
      connection: connect(),
      prefix,
      handlers: { FetchVersion: handle },
      events: {
        attemptEnded: (_name, outcome) => outcomes.push(outcome),
        stalled: (jobId) => stalled.push(jobId),
      },
      ...options,
    });
    closers.unshift(() => worker.close(500));
    await worker.start();
    return { worker, outcomes, stalled };
  };

  const addFetch = (version: string, data?: unknown, attempts = 3) =>
    queue.add(
      'FetchVersion',
      data ??
        jobContracts.FetchVersion.encode({ module: MODULE, version, goModSha256: '', traceContext: {} }),
      { jobId: `${MODULE}@${version}`, attempts, backoff: { type: 'fixed', delay: 10 } },
    );

  const ended = async (jobId: string): Promise<JobOutcome> => {
    await events.ready();
    return events.watch(jobId).outcome;
  };

  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  beforeEach(() => {
    prefix = `test-${randomUUID().slice(0, 8)}`;
    queue = new Queue(FETCH_QUEUE, { connection: connect(), prefix });
    events = new JobEvents({ connection: connect(), prefix, queueName: FETCH_QUEUE });
    closers.push(
      () => queue.close(),
      () => events.close(),
    );
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  it('hands the decoded, validated message to the handler and completes with its result', async () => {
    const seen: unknown[] = [];
    await startWorker(async (message) => {
      seen.push(message);
      return { result: 'fetched' };
    });
    const outcome = ended(`${MODULE}@v1.0.0`);
    await addFetch('v1.0.0');
    expect(await outcome).toEqual({ state: 'completed', returnvalue: { result: 'fetched' } });
    expect(seen).toEqual([{ module: MODULE, version: 'v1.0.0', goModSha256: '', traceContext: {} }]);
  });

  it('fails an invalid payload at once, without retries and without calling the handler', async () => {
    let calls = 0;
    const { outcomes } = await startWorker(async () => {
      calls += 1;
    });
    const outcome = ended(`${MODULE}@v1.0.0`);
    await addFetch('v1.0.0', { module: '../../etc', version: 'v1.0.0' }, 5);
    const failed = await outcome;
    expect(failed.state).toBe('failed');
    expect(failed.state === 'failed' && failed.failedReason).toMatch(/^\[invalid-argument\] /);
    expect(calls).toBe(0);
    expect(outcomes).toEqual(['invalid']);
    expect((await queue.getJob(`${MODULE}@v1.0.0`))?.attemptsMade).toBe(1);
  });

  it('lets middleware put a job back to delayed without spending an attempt', async () => {
    let turnedAway = 0;
    const { outcomes } = await startWorker(async () => ({ result: 'fetched' }), {
      middleware: [
        async (_name, _message, { job, token }, next) => {
          if (turnedAway < 2) {
            turnedAway += 1;
            await job.moveToDelayed(Date.now() + 20, token);
            throw new DelayedError();
          }
          return next();
        },
      ],
    });
    const outcome = ended(`${MODULE}@v1.0.0`);
    await addFetch('v1.0.0', undefined, 1);
    expect(await outcome).toMatchObject({ state: 'completed' });
    expect(outcomes).toEqual(['delayed', 'delayed', 'completed']);
    expect((await queue.getJob(`${MODULE}@v1.0.0`))?.attemptsMade).toBe(1);
  });

  it('at shutdown lets a running job finish within the grace period', async () => {
    const started = deferred();
    const release = deferred();
    const { worker, outcomes } = await startWorker(async () => {
      started.resolve();
      await release.promise;
      return { result: 'fetched' };
    });
    const outcome = ended(`${MODULE}@v1.0.0`);
    await addFetch('v1.0.0');
    await started.promise;
    const closing = worker.close(30_000);
    release.resolve();
    expect(await closing).toEqual({ handedBack: 0 });
    expect(await outcome).toMatchObject({ state: 'completed' });
    expect(outcomes).toEqual(['completed']);
  });

  it('hands a job still running after the grace period back to the queue, where another worker completes it', async () => {
    const started = deferred();
    const first = await startWorker(async (_message, { signal }) => {
      started.resolve();
      await new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    });
    await addFetch('v1.0.0');
    await started.promise;
    expect(await first.worker.close(100)).toEqual({ handedBack: 1 });
    expect(first.outcomes).toEqual(['handed-back']);
    const job = await queue.getJob(`${MODULE}@v1.0.0`);
    expect(await job?.getState()).toBe('waiting');
    expect(job?.attemptsMade).toBe(0);

    const outcome = ended(`${MODULE}@v1.0.0`);
    const second = await startWorker(async () => ({ result: 'fetched' }));
    expect(await outcome).toMatchObject({ state: 'completed' });
    expect(second.outcomes).toEqual(['completed']);
  });

  it('runs a job again when its worker stops renewing the lock (stalled-job recovery)', async () => {
    const started = deferred();
    const hung = await startWorker(
      async () => {
        started.resolve();
        await new Promise(() => undefined);
      },
      { lockDurationMs: 1_000, stalledIntervalMs: 500 },
    );
    await addFetch('v1.0.0');
    await started.promise;
    // The worker dies without a word: no lock renewal, no hand-back (like SIGKILL).
    hung.worker.worker.removeAllListeners();
    await hung.worker.worker.close(true);
    const outcome = ended(`${MODULE}@v1.0.0`);
    const rescuer = await startWorker(async () => ({ result: 'fetched' }), {
      lockDurationMs: 1_000,
      stalledIntervalMs: 500,
    });
    expect(await outcome).toMatchObject({ state: 'completed' });
    expect(rescuer.stalled).toEqual([`${MODULE}@v1.0.0`]);
  });
});
