import { describe, expect, it } from 'vitest';
import { jobsV1 } from '@modproxy/contracts';
import { isModuleError } from '@modproxy/errors';
import { jobContracts } from './job-contracts';
import { fetchJobId } from './job-ids';

const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('job contracts', () => {
  it('carry each message through JSON (as BullMQ stores job data) unchanged, under its message name', () => {
    const fetch = {
      module: 'example.test/Mixed/lib',
      version: 'v1.2.0-pre',
      requestedAt: new Date('2026-01-02T03:04:05.000Z'),
      goModSha256: '',
      traceContext: { traceparent },
    };
    const data = JSON.parse(JSON.stringify(jobContracts.FetchVersion.encode(fetch)));
    expect(data).toEqual({
      module: 'example.test/Mixed/lib',
      version: 'v1.2.0-pre',
      requestedAt: '2026-01-02T03:04:05.000Z',
      traceContext: { traceparent },
    });
    expect(jobContracts.FetchVersion.decode(data)).toEqual(fetch);

    const crawl = {
      module: 'golang.org/x/mod',
      reason: jobsV1.CrawlReason.CRAWL_REASON_RECENT,
      traceContext: {},
    };
    const crawlData = JSON.parse(JSON.stringify(jobContracts.CrawlModule.encode(crawl)));
    expect(crawlData).toEqual({ module: 'golang.org/x/mod', reason: 'CRAWL_REASON_RECENT' });
    expect(jobContracts.CrawlModule.decode(crawlData)).toEqual(crawl);

    const refresh = { module: 'golang.org/x/mod', traceContext: { traceparent } };
    expect(
      jobContracts.RefreshList.decode(JSON.parse(JSON.stringify(jobContracts.RefreshList.encode(refresh)))),
    ).toEqual(refresh);
    expect([
      jobContracts.FetchVersion.name,
      jobContracts.CrawlModule.name,
      jobContracts.RefreshList.name,
    ]).toEqual(['FetchVersion', 'CrawlModule', 'RefreshList']);
  });

  it.each([
    ['not an object', 'nope'],
    ['no module', { version: 'v1.0.0' }],
    ['a malformed module path', { module: 'Example.test/../x', version: 'v1.0.0' }],
    ['a version that is not canonical', { module: 'example.test/a', version: 'v1.0' }],
    ['a branch for a version', { module: 'example.test/a', version: 'main' }],
    ['a major version the path does not have', { module: 'example.test/a/v2', version: 'v1.0.0' }],
    ['an invalid requestedAt', { module: 'example.test/a', version: 'v1.0.0', requestedAt: 'yesterday' }],
    [
      'an oversized trace context',
      { module: 'example.test/a', version: 'v1.0.0', traceContext: { traceparent: 'x'.repeat(10_000) } },
    ],
  ])('refuse a FetchVersion with %s as invalid-argument', (_what, data) => {
    let caught: unknown;
    try {
      jobContracts.FetchVersion.decode(data);
    } catch (error) {
      caught = error;
    }
    expect(isModuleError(caught, 'invalid-argument'), String(caught)).toBe(true);
  });

  it('refuse a CrawlModule without a known reason, and producers cannot encode an invalid message', () => {
    expect(() => jobContracts.CrawlModule.decode({ module: 'example.test/a' })).toThrow(/reason/);
    expect(() => jobContracts.CrawlModule.decode({ module: 'example.test/a', reason: 'SOMETIMES' })).toThrow(
      /reason/,
    );
    expect(() =>
      jobContracts.FetchVersion.encode({
        module: 'example.test/a',
        version: 'latest',
        goModSha256: '',
        traceContext: {},
      }),
    ).toThrow(/not a canonical semantic version/);
    const served = { module: 'example.test/a', version: 'v1.0.0', traceContext: {} };
    // The go.mod digest a producer served travels with the job, and only as 64 hex digits.
    const digest = 'ab'.repeat(32);
    const data = JSON.parse(
      JSON.stringify(jobContracts.FetchVersion.encode({ ...served, goModSha256: digest })),
    );
    expect(data).toMatchObject({ goModSha256: digest });
    expect(jobContracts.FetchVersion.decode(data).goModSha256).toBe(digest);
    for (const bad of ['AB'.repeat(32), 'ab', `${digest}0`]) {
      expect(() => jobContracts.FetchVersion.encode({ ...served, goModSha256: bad })).toThrow(/goModSha256/);
      expect(() => jobContracts.FetchVersion.decode({ ...served, goModSha256: bad })).toThrow(/goModSha256/);
    }
  });

  it('name a fetch job by module@version, which BullMQ accepts as a custom id (no ":", never an integer)', () => {
    expect(fetchJobId('example.test/Mixed/lib', 'v3.0.0+incompatible')).toBe(
      'example.test/Mixed/lib@v3.0.0+incompatible',
    );
    expect(fetchJobId('example.test/a', 'v1.0.0-0.20240101000000-abcdefabcdef')).not.toContain(':');
  });
});
