import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@modproxy/observability';
import { getFreePort, type RedisServer, startRedisServer } from '@modproxy/testing';
import { loadLathensConfig } from './config';
import { type RunningLathens, startLathens } from './server';

const silent = createLogger({ service: 'lathens-metrics-redis-away-test', level: 'silent' });

/**
 * `/metrics` while lathens cannot use its Redis: the scrape is when an operator (and the
 * LathensRedisDown alert) learns that, so it must answer, with lathens_redis_up 0, instead of
 * waiting for the revalidation queue's depth from a Redis that never answers.
 */
describe('lathens /metrics while its Redis cannot be used (real Redis)', () => {
  let guarded: RedisServer;
  const running: RunningLathens[] = [];

  beforeAll(async () => {
    guarded = await startRedisServer({ password: `right-${randomUUID()}` });
  });
  afterEach(async () => {
    for (const lathens of running.splice(0)) await lathens.shutdown();
  });
  afterAll(async () => {
    await guarded?.stop();
  });

  it.each([
    ['unreachable (a closed loopback port)', async () => `redis://127.0.0.1:${await getFreePort()}`],
    ['refusing the password', async () => `redis://:wrong-password@127.0.0.1:${guarded.port}`],
  ])('answers /metrics with lathens_redis_up 0 when its Redis is %s', async (_what, url) => {
    const config = loadLathensConfig({
      env: {
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        REDIS_URL: await url(),
        KEY_PREFIX: `away${randomUUID().slice(0, 6)}:`,
        UPSTREAM: 'off',
        STORAGE_TYPE: 'none',
        LOG_LEVEL: 'silent',
        SHUTDOWN_TIMEOUT_MS: '1000',
      },
    });
    const lathens = await startLathens(config, silent);
    running.push(lathens);
    const answer = await fetch(`${lathens.httpUrl}/metrics`);
    expect(answer.status).toBe(200);
    const text = await answer.text();
    expect(text).toMatch(/^lathens_redis_up 0$/m);
    // The depth it could not read is left out, not made up.
    expect(text).not.toMatch(/^lathens_revalidation_queue_jobs\{/m);
  });
});
