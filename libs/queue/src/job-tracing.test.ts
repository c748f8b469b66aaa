import { randomUUID } from 'node:crypto';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { DelayedError } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { jobsV1 } from '@modproxy/contracts';
import { errors } from '@modproxy/errors';
import { startInMemoryTracing, startRedisServer, waitUntil, type RedisServer } from '@modproxy/testing';
import { CrawlQueue } from './crawl-queue';
import { FetchQueue } from './fetch-queue';
import { JobWorker, type JobHandler } from './job-worker';
import { CRAWL_QUEUE, FETCH_QUEUE } from './queue-names';
import { createQueueRedis } from './redis-connection';

const MODULE = 'example.test/hello.git';
const tracing = startInMemoryTracing();
const tracer = trace.getTracer('test');

describe('trace context through jobs (real Redis)', () => {
  let redis: RedisServer;
  let prefix: string;
  let fetches: FetchQueue;
  const closers: Array<() => Promise<unknown>> = [];

  const connect = (): Redis => {
    const connection = createQueueRedis(redis.url);
    closers.push(async () => {
      await connection.quit().catch(() => undefined);
      connection.disconnect();
    });
    return connection;
  };

  const startWorker = async (handle: JobHandler<'FetchVersion', unknown>) => {
    const worker = new JobWorker({
      queueName: FETCH_QUEUE,
      connection: connect(),
      prefix,
      handlers: { FetchVersion: handle },
    });
    closers.unshift(() => worker.close(500));
    await worker.start();
  };

  /** Runs `fn` inside a span standing for the HTTP request that wants the version. */
  const inRequest = async <T>(fn: () => Promise<T>) => {
    const request = tracer.startSpan('GET zip', { kind: SpanKind.SERVER });
    try {
      return { request, result: await context.with(trace.setSpan(context.active(), request), fn) };
    } finally {
      request.end();
    }
  };

  const named = (spans: ReadableSpan[], name: string) => spans.filter((span) => span.name === name);
  const id = (span: ReadableSpan | undefined) => span?.spanContext().spanId;

  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
    await tracing.stop();
  });
  beforeEach(() => {
    tracing.reset();
    prefix = `test-${randomUUID().slice(0, 8)}`;
    fetches = new FetchQueue({ connection: connect(), prefix });
    closers.unshift(() => fetches.close());
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  it('continues the request’s trace from the producer span to the worker’s span and what it does', async () => {
    await startWorker(async () => {
      // What the fetch does (an upstream call, a save to storage) is a child of the job's span.
      tracer.startSpan('upstream fetch').end();
      return { result: 'fetched' };
    });
    const { request } = await inRequest(() => fetches.fetchAndWait(MODULE, 'v1.0.0', { timeoutMs: 10_000 }));
    const spans = tracing.spans();
    const [producer] = named(spans, `send ${FETCH_QUEUE}`);
    const [consumer] = named(spans, `process ${FETCH_QUEUE}`);
    const [work] = named(spans, 'upstream fetch');
    expect(producer?.kind).toBe(SpanKind.PRODUCER);
    expect(consumer?.kind).toBe(SpanKind.CONSUMER);
    expect(producer?.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    expect(consumer?.parentSpanContext?.spanId).toBe(id(producer));
    expect(work?.parentSpanContext?.spanId).toBe(id(consumer));
    for (const span of [producer, consumer, work]) {
      expect(span?.spanContext().traceId).toBe(request.spanContext().traceId);
    }
    expect(producer?.attributes).toMatchObject({
      'messaging.system': 'bullmq',
      'messaging.operation.type': 'send',
      'messaging.destination.name': FETCH_QUEUE,
      'messaging.message.id': `${MODULE}@v1.0.0`,
    });
    expect(consumer?.attributes).toMatchObject({
      'messaging.operation.type': 'process',
      'messaging.bullmq.job.attempt': 1,
    });
    // The job itself carries the producer span's context, for any worker in any process.
    const job = await fetches.queue.getJob(`${MODULE}@v1.0.0`);
    expect(job?.data.traceContext.traceparent).toBe(`00-${request.spanContext().traceId}-${id(producer)}-01`);
  });

  it('puts every attempt in the trace: a failure is an error, a move back to delayed is not', async () => {
    let attempt = 0;
    await startWorker(async (_message, { job, token }) => {
      attempt += 1;
      if (attempt === 1) {
        await job.moveToDelayed(Date.now() + 20, token);
        throw new DelayedError();
      }
      if (attempt === 2) throw errors.unavailable('upstream.direct', 'host busy');
      throw errors.notFound('upstream.direct', 'no such version');
    });
    const { request } = await inRequest(() =>
      fetches.fetchAndWait(MODULE, 'v1.0.1', { timeoutMs: 10_000 }).catch((error: unknown) => error),
    );
    // The waiter is answered by the first failed attempt; the job's retry comes after its backoff.
    await waitUntil(() => named(tracing.spans(), `process ${FETCH_QUEUE}`).length >= 3, {
      what: 'the third attempt',
      timeoutMs: 20_000,
    });
    const consumers = named(tracing.spans(), `process ${FETCH_QUEUE}`);
    expect(consumers.map((span) => span.status.code)).toEqual([
      SpanStatusCode.UNSET,
      SpanStatusCode.ERROR,
      SpanStatusCode.ERROR,
    ]);
    for (const span of consumers) expect(span.spanContext().traceId).toBe(request.spanContext().traceId);
  });

  it('never lets a request’s oversized trace headers make the job invalid', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const { result } = await inRequest(() =>
      fetches.add(MODULE, 'v1.0.2', {
        traceContext: { traceparent, tracestate: `vendor=${'a'.repeat(600)}` },
      }),
    );
    expect(result.state).toBe('waiting');
    const job = await fetches.queue.getJob(`${MODULE}@v1.0.2`);
    const carried = job?.data.traceContext as Record<string, string>;
    expect(carried['traceparent']).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    for (const value of Object.values(carried)) expect(value.length).toBeLessThanOrEqual(512);
  });

  it('traces crawl jobs the same way', async () => {
    const crawls = new CrawlQueue({ connection: connect(), prefix });
    closers.unshift(() => crawls.close());
    const { request } = await inRequest(async () => {
      await crawls.crawlModule(MODULE, jobsV1.CrawlReason.CRAWL_REASON_SCHEDULED);
      await crawls.refreshList(MODULE);
    });
    const producers = named(tracing.spans(), `send ${CRAWL_QUEUE}`);
    expect(producers).toHaveLength(2);
    const jobs = await crawls.queue.getJobs(['waiting', 'delayed']);
    expect(jobs).toHaveLength(2);
    for (const job of jobs) {
      expect(job.data.traceContext.traceparent).toContain(request.spanContext().traceId);
    }
  });
});
