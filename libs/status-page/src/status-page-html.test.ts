import { describe, expect, it } from 'vitest';
import { escapeHtml, renderStatusPage } from './status-page-html';
import type { StatusSnapshot } from './status-snapshot';

const NOW = new Date('2026-12-01T10:00:00Z');
const HOSTILE = `<script>alert("x")</script><img src=x onerror='alert(1)'>&amp;`;

function snapshot(overrides: Partial<StatusSnapshot> = {}): StatusSnapshot {
  return {
    generatedAt: NOW,
    fetched: [],
    failures: [],
    queue: { state: 'ok' },
    hostsState: { state: 'ok' },
    hosts: [],
    ...overrides,
  };
}

describe('renderStatusPage', () => {
  it('escapes everything that comes from data: messages, details, host names and failure records', () => {
    const html = renderStatusPage(
      snapshot({
        fetched: [{ module: 'example.com/m', version: 'v1.0.0', at: NOW, by: 'fetch queue' }],
        failures: [
          {
            module: 'example.com/m',
            version: 'v1.0.1',
            kind: 'bad-gateway',
            message: HOSTILE,
            detail: HOSTILE,
            at: NOW,
            by: 'this process',
          },
        ],
        hosts: [
          {
            host: `h"><script>x</script>`,
            limit: { concurrency: 1, ratePerSecond: 0, burst: 1 },
            inFlight: 0,
            coolingDownUntil: undefined,
            consecutiveFailures: 1,
            lastStartAt: NOW,
            lastSuccessAt: undefined,
            lastFailureAt: NOW,
            recentFailures: [{ at: NOW, errorKind: `<b>k</b>`, message: HOSTILE, pauseMs: 1_000 }],
          },
        ],
      }),
      { title: '<i>modproxy</i>' },
    );
    // The page's own markup has no script and no image at all; every one in the text is data.
    expect(html).not.toMatch(/<script|<img|<b>|<i>|onerror='/i);
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).toContain('onerror=&#39;alert(1)&#39;');
    expect(html).toContain('&amp;amp;');
    expect(html).toContain('data-host="h&quot;&gt;&lt;script&gt;x&lt;/script&gt;"');
    expect(html).toContain('&lt;b&gt;k&lt;/b&gt;');
    expect(html).toContain('<title>&lt;i&gt;modproxy&lt;/i&gt;</title>');
  });

  it('says when each thing happened, how long ago, and how long a host still cools down', () => {
    const html = renderStatusPage(
      snapshot({
        fetched: [
          {
            module: 'example.com/m',
            version: 'v1.0.0',
            at: new Date(NOW.getTime() - 42_000),
            durationMs: 1_250,
            by: 'fetch queue',
            result: 'fetched',
          },
        ],
        hosts: [
          {
            host: 'proxy.golang.example',
            limit: { concurrency: 1, ratePerSecond: 0, burst: 1 },
            inFlight: 2,
            coolingDownUntil: new Date(NOW.getTime() + 5 * 60_000),
            consecutiveFailures: 3,
            lastStartAt: undefined,
            lastSuccessAt: undefined,
            lastFailureAt: new Date(NOW.getTime() - 3 * 3_600_000),
            recentFailures: [],
          },
        ],
      }),
    );
    expect(html).toContain('<time datetime="2026-12-01T09:59:18.000Z">2026-12-01 09:59:18 UTC</time>');
    expect(html).toContain('(42 s ago)');
    expect(html).toContain('1.3 s');
    expect(html).toContain('cooling down</span> until <time datetime="2026-12-01T10:05:00.000Z">');
    expect(html).toContain('(in 5 min)');
    expect(html).toContain('(3 h ago)');
    expect(html).toContain('<span class="empty">never</span>');
  });

  it('says why a section is empty: nothing happened, no queue Redis, or the queue Redis did not answer', () => {
    expect(renderStatusPage(snapshot())).toContain('No version fetched recently.');
    expect(renderStatusPage(snapshot())).toContain('No fetch failed recently.');
    expect(renderStatusPage(snapshot({ hostsState: { state: 'not-configured' } }))).toContain(
      'No queue Redis configured (QUEUE_REDIS_URL)',
    );
    const down = renderStatusPage(
      snapshot({
        queue: { state: 'unavailable', reason: 'the queue Redis did not answer within 2000 ms' },
        hostsState: { state: 'unavailable', reason: 'the queue Redis did not answer within 2000 ms' },
      }),
    );
    expect(down).toContain(
      'Without the fetch queue’s completed jobs: the queue Redis did not answer within 2000 ms.',
    );
    expect(down).toContain('Unavailable: the queue Redis did not answer within 2000 ms.');
  });
});

describe('escapeHtml', () => {
  it('escapes the five characters that end text or an attribute, and nothing else', () => {
    expect(escapeHtml(`a&b<c>d"e'f/g`)).toBe('a&amp;b&lt;c&gt;d&quot;e&#39;f/g');
  });
});
