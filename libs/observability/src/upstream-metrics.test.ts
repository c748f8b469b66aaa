import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createUpstreamMetrics } from './upstream-metrics';

describe('createUpstreamMetrics', () => {
  it('counts and times calls by upstream, host, method and result, naming at most 50 hosts', async () => {
    const registry = new Registry();
    const record = createUpstreamMetrics(registry, 'test');
    record({
      upstream: 'goproxy',
      host: 'proxy.golang.org',
      method: 'fetch',
      result: 'ok',
      durationMs: 1500,
    });
    record({
      upstream: 'goproxy',
      host: 'proxy.golang.org',
      method: 'fetch',
      result: 'timeout',
      durationMs: 30_000,
    });
    for (let i = 0; i < 60; i++) {
      record({
        upstream: 'direct',
        host: `vanity${i}.example`,
        method: 'list',
        result: 'ok',
        durationMs: 10,
      });
    }
    const requests = await registry.getSingleMetric('test_upstream_requests_total')?.get();
    const hosts = new Set(requests?.values.map((value) => value.labels['host']));
    expect(hosts.size).toBe(50 + 1);
    expect(hosts.has('other')).toBe(true);
    expect(hosts.has('vanity49.example')).toBe(false);
    const other = requests?.values.find((value) => value.labels['host'] === 'other');
    expect(other?.value).toBe(11);
    const text = await registry.metrics();
    expect(text).toContain(
      'test_upstream_request_duration_seconds_sum{upstream="goproxy",host="proxy.golang.org",method="fetch",result="timeout"} 30',
    );
  });

  it('names a VCS host only once a call to it succeeded: junk hosts land in other and take no slot', async () => {
    const registry = new Registry();
    const record = createUpstreamMetrics(registry, 'test');
    const direct = (host: string, result: string) =>
      record({ upstream: 'direct', host, method: 'fetch', result, durationMs: 5 });
    // A client asking for 500 made-up hosts: every fetch fails.
    for (let i = 0; i < 500; i++) direct(`junk${i}.example`, i % 2 === 0 ? 'bad-gateway' : 'not-found');
    direct('invalid', 'bad-gateway');
    // A real host fails first (no slot yet), then succeeds, and keeps its name for later failures.
    direct('github.com', 'timeout');
    direct('github.com', 'ok');
    direct('github.com', 'not-found');
    // Upstream proxies come from configuration: named whatever the result.
    record({
      upstream: 'goproxy',
      host: 'proxy.example:8443',
      method: 'list',
      result: 'bad-gateway',
      durationMs: 5,
    });
    // The slots the junk did not take are there for the next real hosts.
    for (let i = 0; i < 48; i++) direct(`real${i}.example`, 'ok');

    const requests = (await registry.getSingleMetric('test_upstream_requests_total')?.get())?.values ?? [];
    const count = (host: string, result: string) =>
      requests.find((value) => value.labels['host'] === host && value.labels['result'] === result)?.value;
    const hosts = new Set(requests.map((value) => String(value.labels['host'])));
    expect([...hosts].filter((host) => host.startsWith('junk'))).toEqual([]);
    expect([count('other', 'bad-gateway'), count('other', 'not-found'), count('other', 'timeout')]).toEqual([
      250, 250, 1,
    ]);
    expect([count('github.com', 'ok'), count('github.com', 'not-found')]).toEqual([1, 1]);
    expect(count('invalid', 'bad-gateway')).toBe(1);
    expect(count('proxy.example:8443', 'bad-gateway')).toBe(1);
    expect(hosts.has('real47.example')).toBe(true);
    // 50 named: github.com, the proxy and 48 real hosts; `invalid` and `other` take no slot.
    expect(hosts.size).toBe(50 + 2);
  });
});
