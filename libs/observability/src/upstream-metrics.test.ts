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
});
