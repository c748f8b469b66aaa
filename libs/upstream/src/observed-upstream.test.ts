import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFixtureModules, createTempDir, type FixtureModules } from '@modproxy/testing';
import { createUpstreamFromList } from './create-upstream';
import { proxyHostOf, vcsHostOf, type UpstreamCall } from './observed-upstream';
import { json, LoopbackServer, reply } from './test-support/loopback-server';

describe('upstream calls observed by host and result', () => {
  let fixtures: FixtureModules;
  let proxy: LoopbackServer;
  let workDir: string;

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    workDir = await createTempDir('observed-work-', fixtures.root);
    proxy = await LoopbackServer.start();
  });

  afterAll(async () => {
    await proxy?.close();
    await fixtures?.close();
  });

  it('tells each link of the chain what it was asked, its host and how it ended; never a module path', async () => {
    const hello = fixtures.hello.path;
    // The proxy knows only hello's list: everything else falls through to direct (`,`: on 404).
    proxy.route(`/${hello}/@v/list`, reply(200, 'v1.0.0\nv1.1.0\n'));
    proxy.route(`/${hello}/@latest`, json({ Version: 'v1.1.0', Time: '2024-01-02T03:04:05Z' }));
    const calls: UpstreamCall[] = [];
    const upstream = createUpstreamFromList(`${proxy.url},direct`, {
      direct: { env: fixtures.directEnv, workDir },
      goproxy: { timeoutMs: 5_000 },
      onCall: (call) => calls.push(call),
    });
    try {
      expect(await upstream.list(hello)).toEqual(['v1.0.0', 'v1.1.0']);
      // Not on the proxy (404), then not in any repository either.
      await expect(upstream.list(fixtures.missingModule)).rejects.toMatchObject({ kind: 'not-found' });
      expect(await upstream.list(fixtures.legacy.path)).toContain('v1.0.0');
    } finally {
      await upstream.close();
    }
    const proxyHost = new URL(proxy.url).host;
    expect(calls.map(({ durationMs: _ignored, ...call }) => call)).toEqual([
      { upstream: 'goproxy', host: proxyHost, method: 'list', result: 'ok' },
      { upstream: 'goproxy', host: proxyHost, method: 'list', result: 'not-found' },
      { upstream: 'direct', host: 'example.test', method: 'list', result: 'not-found' },
      { upstream: 'goproxy', host: proxyHost, method: 'list', result: 'not-found' },
      { upstream: 'direct', host: 'example.test', method: 'list', result: 'ok' },
    ]);
    for (const call of calls) expect(call.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('reports an upstream that cannot be reached as a failed call, not as an answer', async () => {
    const calls: UpstreamCall[] = [];
    const closed = await LoopbackServer.start();
    const url = closed.url;
    await closed.close();
    const upstream = createUpstreamFromList(url, {
      direct: {},
      goproxy: { timeoutMs: 5_000 },
      onCall: (call) => calls.push(call),
    });
    try {
      await expect(upstream.latest(fixtures.hello.path)).rejects.toMatchObject({ kind: 'bad-gateway' });
    } finally {
      await upstream.close();
    }
    expect(calls).toMatchObject([{ upstream: 'goproxy', method: 'latest', result: 'bad-gateway' }]);
  });

  it('keeps host labels to host names: no userinfo, no path, nothing else', () => {
    expect(proxyHostOf('https://alice:s3cret@Proxy.Example:8443/go/')).toBe('proxy.example:8443');
    expect(vcsHostOf('GitHub.com/Corp/Repo/v2')).toBe('github.com');
    expect(vcsHostOf('a_b!c/x')).toBe('invalid');
    // The go command fetches only from a dotted first element.
    expect(vcsHostOf('nodot/x')).toBe('invalid');
    // A one-element path is the module path itself: no label may hold it.
    expect(vcsHostOf('Example.com')).toBe('other');
    expect(proxyHostOf('not a url')).toBe('invalid');
  });
});
