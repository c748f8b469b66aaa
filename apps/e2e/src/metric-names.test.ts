import { describe, expect, it } from 'vitest';
import { isKnownMetric, metricNamesIn, metricTypes, samples } from './metric-names';

describe('metric names in PromQL', () => {
  it('finds metrics, not functions, labels, keywords, durations or Grafana variables', () => {
    expect(
      metricNamesIn(
        'histogram_quantile(0.95, sum by (route, le) (rate(modproxy_http_request_duration_seconds_bucket{route=~"zip|info",status!="200"}[$__rate_interval])))',
      ),
    ).toEqual(['modproxy_http_request_duration_seconds_bucket']);
    expect(
      metricNamesIn(
        'a_total / on (job) group_left(instance) b:rate5m > 0.25 and (sum(rate(c_total[10m] offset 1h)) or vector(0)) == 0 unless max without (x) (d) > 1e3',
      ).sort(),
    ).toEqual(['a_total', 'b:rate5m', 'c_total', 'd']);
    expect(
      metricNamesIn('sum(rate(x_total[5m])) by (job) / ignoring(le) y_total{a="sum(z)"}').sort(),
    ).toEqual(['x_total', 'y_total']);
  });

  it('knows a histogram by its _bucket, _sum and _count series, a counter by its own name only', () => {
    const types = metricTypes(
      '# HELP h_seconds x\n# TYPE h_seconds histogram\n# HELP c_total y\n# TYPE c_total counter\nc_total{a="b"} 1\n',
    );
    const none = new Set<string>();
    expect(
      ['h_seconds_bucket', 'h_seconds_sum', 'h_seconds_count', 'c_total', 'up'].map((name) =>
        isKnownMetric(name, types, none),
      ),
    ).toEqual([true, true, true, true, true]);
    expect(
      ['c_total_count', 'h_second_bucket', 'missing_total'].map((name) => isKnownMetric(name, types, none)),
    ).toEqual([false, false, false]);
    expect(isKnownMetric('job:x:rate5m', types, new Set(['job:x:rate5m']))).toBe(true);
  });

  it('reads samples with their labels unescaped', () => {
    expect(samples('# TYPE a counter\na{x="1/2",y="q\\"uote"} 3\nb 4\n')).toEqual([
      { name: 'a', labels: { x: '1/2', y: 'q"uote' } },
      { name: 'b', labels: {} },
    ]);
  });
});
