import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startRedisServer, waitUntil, type RedisServer } from '@modproxy/testing';
import { FetchQueue } from './fetch-queue';
import { JobEvents } from './job-events';
import { JobWorker } from './job-worker';
import { FETCH_QUEUE } from './queue-names';
import { createQueueRedis } from './redis-connection';

const MODULE = 'example.test/events/lib';
const VERSION = 'v1.0.0';

/**
 * The one event reader of a process against a queue Redis (real, `--requirepass`) that refuses
 * it at first: a wrong password fails every command at each connection attempt (ioredis flushes
 * them), so the reader's start fails; the password is then mended on Redis' side, as an
 * operator would, and the same process must wait for jobs again without a restart.
 */
describe('JobEvents after a failed start (real Redis that rejects, then accepts, the password)', () => {
  const closers: Array<() => Promise<unknown>> = [];
  let redis: RedisServer | undefined;

  afterEach(async () => {
    while (closers.length > 0) await closers.pop()?.();
    await redis?.stop();
    redis = undefined;
  });

  const connect = (url: string): Redis => {
    const connection = createQueueRedis(url);
    closers.push(async () => connection.quit().catch(() => connection.disconnect()));
    return connection;
  };

  /** A Redis that wants `right`, a connection that offers `wrong`, and the way to let it in. */
  const refusingRedis = async () => {
    const right = `right-${randomUUID()}`;
    const wrong = `wrong-${randomUUID()}`;
    const server = await startRedisServer({ password: right });
    redis = server;
    const connection = connect(`redis://:${wrong}@127.0.0.1:${server.port}`);
    const letIn = async () => {
      const admin = connect(`redis://:${right}@127.0.0.1:${server.port}`);
      await admin.config('SET', 'requirepass', wrong);
      await waitUntil(() => connection.status === 'ready', { what: 'the connection is let in' });
    };
    return { connection, letIn, url: `redis://:${wrong}@127.0.0.1:${server.port}` };
  };

  it('starts again on the next use after a refused start, and hands events to watchers', async () => {
    const { connection, letIn } = await refusingRedis();
    const prefix = `events-${randomUUID().slice(0, 8)}`;
    const events = new JobEvents({ connection, prefix, queueName: FETCH_QUEUE, blockingTimeoutMs: 200 });
    closers.push(() => events.close());
    await expect(events.ready()).rejects.toThrow(/^WRONGPASS/);

    await letIn();
    await events.ready();
    const watch = events.watch('job-1');
    // What a worker's completion writes to the queue's event stream.
    await connection.xadd(
      `${prefix}:${FETCH_QUEUE}:events`,
      '*',
      'event',
      'completed',
      'jobId',
      'job-1',
      'returnvalue',
      JSON.stringify({ result: 'fetched' }),
    );
    expect(await watch.outcome).toEqual({ state: 'completed', returnvalue: { result: 'fetched' } });
  });

  it('waits for a queue Redis that restarts while it starts, rather than failing', async () => {
    const server = await startRedisServer();
    redis = server;
    const connection = connect(server.url);
    await waitUntil(() => connection.status === 'ready', { what: 'connected' });
    const prefix = `events-${randomUUID().slice(0, 8)}`;
    const events = new JobEvents({ connection, prefix, queueName: FETCH_QUEUE, blockingTimeoutMs: 200 });
    closers.push(() => events.close());
    const closed = once(connection, 'close');
    const restarted = server.restart();
    await closed;
    // Asked while Redis restarts: the start's commands wait for the reconnection.
    const ready = events.ready();
    await restarted;
    await ready;
    const watch = events.watch('job-2');
    await connection.xadd(
      `${prefix}:${FETCH_QUEUE}:events`,
      '*',
      'event',
      'failed',
      'jobId',
      'job-2',
      'failedReason',
      'x',
    );
    expect(await watch.outcome).toEqual({ state: 'failed', failedReason: 'x' });
  });

  it('lets FetchQueue.fetchAndWait fail while Redis refuses it, and succeed once Redis accepts it', async () => {
    const { connection, letIn, url } = await refusingRedis();
    const prefix = `events-${randomUUID().slice(0, 8)}`;
    const queue = new FetchQueue({ connection, prefix });
    closers.push(() => queue.close());
    const refused = await queue.fetchAndWait(MODULE, VERSION, { timeoutMs: 30_000 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toMatchObject({
      kind: 'unavailable',
      message: `${MODULE}@${VERSION}: could not wait for the fetch`,
    });

    await letIn();
    const worker = new JobWorker({
      queueName: FETCH_QUEUE,
      connection: connect(url),
      prefix,
      concurrency: 1,
      handlers: { FetchVersion: async () => ({ result: 'fetched' }) },
    });
    closers.push(() => worker.close(1_000));
    await worker.start();
    expect(await queue.fetchAndWait(MODULE, VERSION, { timeoutMs: 30_000 })).toEqual({ result: 'fetched' });
  });
});
