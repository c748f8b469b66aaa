import { Counter, Histogram, type Registry } from 'prom-client';
import { BoundedLabel } from './bounded-label';

/** What an upstream call reports (the shape of libs/upstream's `UpstreamCall`). */
export interface UpstreamCallSample {
  upstream: string;
  host: string;
  method: string;
  result: string;
  durationMs: number;
}

/** VCS hosts of direct fetches with a series of their own; the rest are `other`. */
const MAX_HOSTS = 50;

/**
 * `<prefix>_upstream_requests_total` and `<prefix>_upstream_request_duration_seconds`, by
 * upstream kind (`goproxy`, `direct`), host, method and result. The host is an upstream
 * proxy's host or a VCS host; at most 50 distinct hosts are named (then `other`), a VCS host
 * only once a call to it succeeded, so a stream of vanity or junk import paths cannot grow the
 * series without end nor take the slots of real hosts. Returns the listener to give to
 * the upstream (`createUpstreamFromConfig`'s `onCall`).
 */
export function createUpstreamMetrics(
  registry: Registry,
  prefix: string,
): (call: UpstreamCallSample) => void {
  const labelNames = ['upstream', 'host', 'method', 'result'] as const;
  const requests = new Counter({
    name: `${prefix}_upstream_requests_total`,
    help: 'Calls to upstream proxies and to VCS hosts (the go command), by upstream kind, host, method and result',
    labelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: `${prefix}_upstream_request_duration_seconds`,
    help: 'How long calls to upstream proxies and VCS hosts took, by upstream kind, host, method and result',
    labelNames,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [registry],
  });
  const hosts = new BoundedLabel(MAX_HOSTS, 'other', ['invalid']);
  return (call) => {
    const labels = {
      upstream: call.upstream,
      // A VCS host is named once a call to it succeeded: requests for made-up hosts, which
      // only fail, stay in `other` and leave the slots to real ones. Proxies come from configuration.
      host: hosts.of(call.host, call.upstream !== 'direct' || call.result === 'ok'),
      method: call.method,
      result: call.result,
    };
    requests.inc(labels);
    duration.observe(labels, call.durationMs / 1_000);
  };
}
