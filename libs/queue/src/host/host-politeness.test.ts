import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, loadConfig } from '@modproxy/config';
import { startRedisServer, waitUntil, type RedisServer } from '@modproxy/testing';
import { HostLimitTable } from './host-limits';
import { HostPoliteness, type HostPolitenessOptions } from './host-politeness';
import { hostLimitTableFromConfig, hostPolitenessConfigShape } from './host-politeness-config';

let server: RedisServer;
const connections: Redis[] = [];
let prefixes = 0;

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await Promise.all(connections.map((redis) => redis.quit().catch(() => undefined)));
  await server?.stop();
});

/** A politeness instance on its own connection (as a worker process would have), in a fresh key space. */
function politeness(options: Partial<HostPolitenessOptions> & { prefix?: string } = {}): HostPoliteness {
  const redis = new Redis(server.url);
  connections.push(redis);
  return new HostPoliteness({
    redis,
    limits: new HostLimitTable({ concurrency: 2, ratePerSecond: 0, burst: 1 }),
    prefix: `t${(prefixes += 1)}`,
    ...options,
  });
}

describe('HostPoliteness', () => {
  it('grants at most the host concurrency across processes, and a released slot is free again', async () => {
    const prefix = `shared${(prefixes += 1)}`;
    const first = politeness({
      prefix,
      limits: new HostLimitTable({ concurrency: 3, ratePerSecond: 0, burst: 1 }),
    });
    const second = politeness({
      prefix,
      limits: new HostLimitTable({ concurrency: 3, ratePerSecond: 0, burst: 1 }),
    });
    const decisions = await Promise.all([
      first.acquire('git.example'),
      second.acquire('git.example'),
      first.acquire('git.example'),
      second.acquire('git.example'),
      first.acquire('git.example'),
    ]);
    const granted = decisions.filter((decision) => decision.granted);
    expect(granted).toHaveLength(3);
    expect(decisions.filter((decision) => !decision.granted).map((d) => !d.granted && d.reason)).toEqual([
      'concurrency',
      'concurrency',
    ]);
    // Other hosts are not affected.
    expect((await first.acquire('other.example')).granted).toBe(true);
    expect((await second.state('git.example')).inFlight).toBe(3);

    const held = granted[0];
    if (!held?.granted) throw new Error('unreachable');
    await second.release(held.lease, { kind: 'success' });
    expect((await first.acquire('GIT.example')).granted).toBe(true);
    expect((await first.acquire('git.example')).granted).toBe(false);
  });

  it("gives a killed worker's slot back once its lease expires, but never a lease kept alive", async () => {
    const prefix = `lease${(prefixes += 1)}`;
    const options = {
      prefix,
      leaseMs: 400,
      limits: new HostLimitTable({ concurrency: 2, ratePerSecond: 0, burst: 1 }),
    };
    const alive = politeness(options);
    const killed = politeness(options);
    const kept = await alive.acquire('git.example');
    expect((await killed.acquire('git.example')).granted).toBe(true);
    if (!kept.granted) throw new Error('the first slot was refused');
    // The killed worker never releases; the live one keeps its lease going.
    const keepAlive = setInterval(() => void alive.extend(kept.lease), 100);
    try {
      expect((await alive.acquire('git.example')).granted).toBe(false);
      let regained = false;
      await waitUntil(async () => (regained = (await alive.acquire('git.example')).granted), {
        what: "the killed worker's slot is free again",
      });
      expect(regained).toBe(true);
      // Both slots are taken again: the live lease never expired.
      const state = await alive.state('git.example');
      expect(state.inFlight).toBe(2);
      expect((await alive.acquire('git.example')).granted).toBe(false);
    } finally {
      clearInterval(keepAlive);
    }
  });

  it('starts at most a burst at once, then one request per token, and says when the next token comes', async () => {
    const host = politeness({ limits: new HostLimitTable({ concurrency: 100, ratePerSecond: 5, burst: 2 }) });
    const decisions = [];
    for (let i = 0; i < 3; i++) decisions.push(await host.acquire('rate.example'));
    expect(decisions.map((decision) => decision.granted)).toEqual([true, true, false]);
    const refused = decisions[2];
    if (!refused || refused.granted) throw new Error('unreachable');
    expect(refused.reason).toBe('rate');
    // One token every 200 ms.
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(200);
    await waitUntil(async () => (await host.acquire('rate.example')).granted, { what: 'a new token' });
  });

  it('pauses a host for what its Retry-After asked, and says so in its state', async () => {
    const host = politeness({ failureBackoffMs: 100 });
    const decision = await host.acquire('busy.example');
    if (!decision.granted) throw new Error('refused');
    await host.release(decision.lease, {
      kind: 'failure',
      errorKind: 'bad-gateway',
      message: 'upstream answered 429 Too Many Requests',
      retryAfterMs: 30_000,
    });
    const refused = await host.acquire('busy.example');
    expect(refused).toMatchObject({ granted: false, reason: 'cooldown' });
    if (refused.granted) throw new Error('unreachable');
    // The host's 30 s, not our 100 ms backoff.
    expect(refused.retryAfterMs).toBeGreaterThan(25_000);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(30_000);

    const state = await host.state('busy.example');
    expect(state.inFlight).toBe(0);
    expect(state.consecutiveFailures).toBe(1);
    expect(state.coolingDownUntil?.getTime()).toBeGreaterThan(Date.now() + 25_000);
    expect(state.recentFailures).toEqual([
      expect.objectContaining({
        errorKind: 'bad-gateway',
        message: 'upstream answered 429 Too Many Requests',
        pauseMs: 30_000,
      }),
    ]);
    expect(await host.states()).toEqual([expect.objectContaining({ host: 'busy.example' })]);
  });

  it('doubles the pause with every consecutive failure up to the cap; success resets the count, not a running pause', async () => {
    const host = politeness({ failureBackoffMs: 100, failureBackoffMaxMs: 400 });
    const failure = { kind: 'failure', errorKind: 'timeout', message: 'timed out' } as const;
    for (let i = 0; i < 5; i++) await host.report('flaky.example', failure);
    const state = await host.state('flaky.example');
    expect(state.consecutiveFailures).toBe(5);
    expect(state.recentFailures.map((record) => record.pauseMs).reverse()).toEqual([100, 200, 400, 400, 400]);

    await host.report('flaky.example', { kind: 'success' });
    const after = await host.state('flaky.example');
    expect(after.consecutiveFailures).toBe(0);
    expect(after.lastSuccessAt).toBeInstanceOf(Date);
    expect(after.coolingDownUntil).toBeInstanceOf(Date);
    await host.report('flaky.example', failure);
    expect((await host.state('flaky.example')).recentFailures[0]?.pauseMs).toBe(100);
  });

  it('caps what a host may ask for at the longest backoff', async () => {
    const host = politeness({ failureBackoffMs: 100, failureBackoffMaxMs: 2_000 });
    await host.report('greedy.example', {
      kind: 'failure',
      errorKind: 'bad-gateway',
      message: '429',
      retryAfterMs: 86_400_000,
    });
    const refused = await host.acquire('greedy.example');
    if (refused.granted) throw new Error('not paused');
    expect(refused.retryAfterMs).toBeLessThanOrEqual(2_000);
  });
});

describe('host politeness configuration', () => {
  const schema = z.object(hostPolitenessConfigShape);

  it('has defaults, and per-host overrides from HOST_LIMITS', () => {
    const config = loadConfig(schema, {
      env: {
        HOST_CONCURRENCY: '3',
        HOST_RATE_PER_SECOND: '2.5',
        HOST_LIMITS: '{"proxy.example":{"concurrency":16,"ratePerSecond":50},"Git.Example:8443":{"burst":7}}',
      },
    });
    const table = hostLimitTableFromConfig(config);
    expect(table.limitFor('elsewhere.example')).toEqual({ concurrency: 3, ratePerSecond: 2.5, burst: 3 });
    expect(table.limitFor('proxy.example')).toEqual({ concurrency: 16, ratePerSecond: 50, burst: 50 });
    expect(table.limitFor('git.example:8443')).toEqual({ concurrency: 3, ratePerSecond: 2.5, burst: 7 });
    expect(config.HOST_FAILURE_BACKOFF_MS).toBe(1_000);
    expect(config.HOST_FAILURE_BACKOFF_MAX_MS).toBe(300_000);
  });

  it.each([
    ['HOST_LIMITS', '{not json', /HOST_LIMITS: is not valid JSON/],
    ['HOST_LIMITS', '[1]', /HOST_LIMITS: must be a JSON object/],
    ['HOST_LIMITS', '{"a.example":{"concurency":2}}', /HOST_LIMITS: a\.example: .*concurency/],
    [
      'HOST_LIMITS',
      '{"a.example":{"concurrency":0}}',
      /HOST_LIMITS: a\.example\.concurrency: must be greater than 0/,
    ],
    ['HOST_LIMITS', '{"not a host":{}}', /HOST_LIMITS: "not a host" is not a host name/],
    ['HOST_CONCURRENCY', '0', /HOST_CONCURRENCY: must be greater than 0/],
    ['HOST_RATE_PER_SECOND', '-1', /HOST_RATE_PER_SECOND: must be 0/],
    ['HOST_FAILURE_BACKOFF_MS', 'soon', /HOST_FAILURE_BACKOFF_MS: must be a duration/],
  ])('refuses %s=%s, naming the variable', (variable, value, message) => {
    expect(() => loadConfig(schema, { env: { [variable]: value } })).toThrow(ConfigError);
    expect(() => loadConfig(schema, { env: { [variable]: value } })).toThrow(message);
  });
});
