import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { errors } from '@modproxy/errors';
import {
  CountingUpstream,
  startRedisServer,
  syntheticGoproxyAnswer,
  waitUntil,
  type CountedRequest,
  type RedisServer,
} from '@modproxy/testing';
import { GoproxyUpstream } from '@modproxy/upstream';
import { HostGate, hostOutcomeOf } from './host-gate';
import { HostLimitTable, type HostLimit } from './host-limits';
import { HostPoliteness, type HostDecision } from './host-politeness';

interface FetchData {
  module: string;
  version: string;
}

let redisServer: RedisServer;
let upstream: CountingUpstream;
let run = 0;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  redisServer = await startRedisServer();
  upstream = await CountingUpstream.start();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  upstream.setAnswer((path) => syntheticGoproxyAnswer(path));
  upstream.reset();
});

afterAll(async () => {
  await upstream?.close();
  await redisServer?.stop();
});

/** Records when each host slot was asked for: a request can only follow its grant. */
class RecordingPoliteness extends HostPoliteness {
  readonly askedAt = new Map<string, number>();
  current: string | undefined;

  override async acquire(host: string): Promise<HostDecision> {
    const asked = Date.now();
    const decision = await super.acquire(host);
    if (decision.granted && this.current !== undefined) this.askedAt.set(this.current, asked);
    return decision;
  }
}

interface Deployment {
  queue: Queue<FetchData>;
  politeness: RecordingPoliteness[];
  /** Resolves when every job added so far has completed. */
  drained(count: number, timeoutMs?: number): Promise<Job<FetchData>[]>;
}

/**
 * Two worker processes' worth of BullMQ workers (their own Redis connections, 16 jobs at once
 * each) fetching from the counting upstream with the real upstream client, every job behind the
 * per-host gate.
 */
async function deploy(
  limit: HostLimit,
  options: { failureBackoffMs?: number; contentionDelayMs?: number } = {},
): Promise<Deployment> {
  run += 1;
  const prefix = `gate${run}`;
  const queueName = 'fetch';
  const connection = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  const queue = new Queue<FetchData>(queueName, { connection, prefix });
  const client = new GoproxyUpstream({ url: upstream.url });
  const recorders: RecordingPoliteness[] = [];
  const workers: Worker<FetchData>[] = [];
  for (let i = 0; i < 2; i++) {
    const workerRedis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
    const politeness = new RecordingPoliteness({
      redis: workerRedis,
      prefix,
      limits: new HostLimitTable(limit),
      failureBackoffMs: options.failureBackoffMs ?? 1_000,
    });
    recorders.push(politeness);
    // The worker's own producer side of the queue, to wake jobs waiting for the host.
    const wakeQueue = new Queue<FetchData>(queueName, { connection: workerRedis, prefix });
    const gate = new HostGate<FetchData>({
      politeness,
      queue: wakeQueue,
      hostOf: () => upstream.host,
      ...(options.contentionDelayMs ? { contentionDelayMs: options.contentionDelayMs } : {}),
    });
    const worker = new Worker<FetchData>(
      queueName,
      gate.wrap(async (job) => {
        politeness.current = `${job.data.module}@${job.data.version}`;
        const fetched = await client.fetch(job.data.module, job.data.version);
        await fetched.release();
      }),
      { connection: workerRedis, prefix, concurrency: 16 },
    );
    worker.on('error', () => undefined);
    workers.push(worker);
    cleanups.push(async () => {
      await worker.close();
      await wakeQueue.close();
      await workerRedis.quit();
    });
  }
  cleanups.push(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    await client.close();
    await connection.quit();
  });
  return {
    queue,
    politeness: recorders,
    drained: async (count, timeoutMs = 120_000) => {
      await waitUntil(async () => (await queue.getJobCountByTypes('completed')) === count, {
        what: `${count} jobs completed`,
        timeoutMs,
        intervalMs: 50,
      });
      return queue.getJobs(['completed'], 0, count);
    },
  };
}

function jobsFor(count: number): Array<{ name: string; data: FetchData; opts: { jobId: string } }> {
  return Array.from({ length: count }, (_, i) => {
    const data = { module: `host.example/m${i}`, version: 'v1.0.0' };
    return { name: 'FetchVersion', data, opts: { jobId: `${data.module}@${data.version}` } };
  });
}

/** The first request of each fetch (its .info), in arrival order. */
function firstRequests(requests: readonly CountedRequest[]): CountedRequest[] {
  const seen = new Set<string>();
  return requests.filter((request) => !seen.has(request.subject) && seen.add(request.subject) !== undefined);
}

describe('per-host politeness in BullMQ workers', () => {
  it('a burst of 500 fetch jobs for one host never has more fetches in flight at the host than its concurrency', async () => {
    upstream.setAnswer((path) => syntheticGoproxyAnswer(path, { delayMs: 10 }));
    const deployment = await deploy({ concurrency: 4, ratePerSecond: 0, burst: 1 });
    await deployment.queue.addBulk(jobsFor(500));
    const completed = await deployment.drained(500);

    // Every version fetched, each once, and no attempt spent on waiting for the host.
    const zips = upstream.requests.filter((request) => request.path.endsWith('.zip'));
    expect(new Set(zips.map((request) => request.subject)).size).toBe(500);
    expect(zips).toHaveLength(500);

    expect(completed.every((job) => job.attemptsMade === 1)).toBe(true);
    // What the host saw: at most 4 fetches at once (a fetch's .mod and .zip go side by side, so
    // up to 8 connections), and the limit was used, not undercut.
    expect(upstream.maxSubjectsInFlight).toBeLessThanOrEqual(4);
    expect(upstream.maxSubjectsInFlight).toBeGreaterThan(1);
    expect(upstream.maxInFlight).toBeLessThanOrEqual(8);
  });

  it('wakes a job waiting for a busy host when a slot is given back, not when its own timer fires', async () => {
    upstream.setAnswer((path) => syntheticGoproxyAnswer(path, { delayMs: 20 }));
    // Their own timers would bring refused jobs back only after 10 minutes.
    const deployment = await deploy(
      { concurrency: 1, ratePerSecond: 0, burst: 1 },
      { contentionDelayMs: 600_000 },
    );
    await deployment.queue.addBulk(jobsFor(8));
    const completed = await deployment.drained(8, 60_000);
    expect(completed.some((job) => job.attemptsStarted > 1)).toBe(true);
    expect(upstream.maxSubjectsInFlight).toBe(1);
  });

  it('starts fetches at no more than the host rate (token bucket: burst, then rate per second)', async () => {
    const rate = 20;
    const burst = 4;
    const deployment = await deploy({ concurrency: 50, ratePerSecond: rate, burst });
    await deployment.queue.addBulk(jobsFor(60));
    await deployment.drained(60);

    const starts = firstRequests(upstream.requests);
    expect(starts).toHaveLength(60);
    // A fetch's first request arrives at most `lag` after its slot was asked for, so fetches that
    // arrive within a window W were granted within W + lag: at most burst + rate × (W + lag).
    const askedAt = new Map(deployment.politeness.flatMap((politeness) => [...politeness.askedAt]));
    const lag = Math.max(...starts.map((request) => request.arrivedAt - (askedAt.get(request.subject) ?? 0)));
    expect(lag).toBeGreaterThanOrEqual(0);
    let worst = { count: 0, allowed: Infinity };
    for (let i = 0; i < starts.length; i++) {
      for (let j = i; j < starts.length; j++) {
        const window = (starts[j]?.arrivedAt ?? 0) - (starts[i]?.arrivedAt ?? 0);
        const count = j - i + 1;
        const allowed = burst + (rate * (window + lag)) / 1000;
        if (count - allowed > worst.count - worst.allowed) worst = { count, allowed };
      }
    }
    expect(worst.count).toBeLessThanOrEqual(Math.floor(worst.allowed + 1e-9));
  });

  it('after a 429 with Retry-After, sends the host nothing until the wait has passed', async () => {
    let limited: CountedRequest | undefined;
    upstream.setAnswer((path, request) => {
      if (limited === undefined && path.endsWith('.info')) {
        limited = request;
        return { status: 429, headers: { 'retry-after': '1' }, body: 'slow down' };
      }
      return syntheticGoproxyAnswer(path);
    });
    const deployment = await deploy({ concurrency: 1, ratePerSecond: 0, burst: 1 }, { failureBackoffMs: 50 });
    await deployment.queue.addBulk(
      jobsFor(6).map((job) => ({
        ...job,
        opts: { ...job.opts, attempts: 3, backoff: { type: 'fixed', delay: 10 } },
      })),
    );
    await deployment.drained(6);

    const answeredAt = limited?.answeredAt;
    if (answeredAt === undefined) throw new Error('the upstream never answered 429');
    const after = upstream.requests.filter(
      (request) => request.arrivedAt >= answeredAt && request !== limited,
    );
    expect(after.length).toBeGreaterThan(0);
    expect(Math.min(...after.map((request) => request.arrivedAt)) - answeredAt).toBeGreaterThanOrEqual(1_000);
    // The job that met the 429 is fetched by its retry.
    expect(
      upstream.requests.filter((request) => request.subject === limited?.subject && request.status === 200),
    ).not.toHaveLength(0);
  });

  it('backs a host that keeps failing off exponentially', async () => {
    upstream.setAnswer(() => ({ status: 502, body: 'bad gateway' }));
    const deployment = await deploy(
      { concurrency: 1, ratePerSecond: 0, burst: 1 },
      { failureBackoffMs: 100 },
    );
    await deployment.queue.addBulk(jobsFor(5).map((job) => ({ ...job, opts: { ...job.opts, attempts: 1 } })));
    await waitUntil(async () => (await deployment.queue.getJobCountByTypes('failed')) === 5, {
      what: 'every job failed',
      timeoutMs: 60_000,
      intervalMs: 50,
    });
    const attempts = [...upstream.requests].sort((a, b) => a.arrivedAt - b.arrivedAt);
    expect(attempts).toHaveLength(5);
    // Each failure pauses the host for 100 ms × 2^(failures - 1) from its answer.
    for (let k = 1; k < attempts.length; k++) {
      const previousAnswer = attempts[k - 1]?.answeredAt ?? Infinity;
      expect((attempts[k]?.arrivedAt ?? 0) - previousAnswer).toBeGreaterThanOrEqual(100 * 2 ** (k - 1));
    }
    const state = await deployment.politeness[0]?.state(upstream.host);
    expect(state?.consecutiveFailures).toBe(5);
    expect(state?.recentFailures[0]).toMatchObject({ errorKind: 'bad-gateway', pauseMs: 1_600 });
  });
});

describe('hostOutcomeOf', () => {
  it("blames the host only for an upstream's failures", () => {
    expect(
      hostOutcomeOf(errors.badGateway('upstream.goproxy.info', '429', { retryAfterSeconds: 7 })),
    ).toEqual({
      kind: 'failure',
      errorKind: 'bad-gateway',
      message: '429',
      retryAfterMs: 7_000,
    });
    expect(hostOutcomeOf(errors.timeout('upstream.direct.fetch', 'slow'))).toMatchObject({ kind: 'failure' });
    expect(hostOutcomeOf(errors.notFound('upstream.goproxy.fetch', 'no such version'))).toEqual({
      kind: 'success',
    });
    // Our own: storage down, a cancelled job, the go command's local queue being full.
    expect(hostOutcomeOf(errors.unavailable('storage.grpc.save', 'down'))).toEqual({ kind: 'neutral' });
    expect(hostOutcomeOf(errors.cancelled('upstream.goproxy.fetch', 'shutting down'))).toEqual({
      kind: 'neutral',
    });
    expect(
      hostOutcomeOf(errors.unavailable('upstream.direct.fetch', 'queue full', { retryAfterSeconds: 10 })),
    ).toEqual({
      kind: 'neutral',
    });
    expect(hostOutcomeOf(new Error('a bug'))).toEqual({ kind: 'neutral' });
  });
});
