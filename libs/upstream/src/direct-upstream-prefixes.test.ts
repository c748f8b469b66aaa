import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFixtureModules,
  createTempDir,
  removeDir,
  type FixtureModules,
  moduleErrorOf,
} from '@modproxy/testing';
import { DirectUpstream } from './direct-upstream';
import { GoImportHost } from './test-support/go-import-host';

/**
 * `go get <package>@<version>` makes the go command ask its proxy for every shorter prefix of the
 * package path too (`example.test/team/tool`, `example.test/team`, `example.test`). A direct
 * fetch of a prefix that is no module must be `not-found` (404, no retries, the host not backed
 * off), while a failure to reach the host stays `bad-gateway`. Real go command, real HTTPS: the
 * hosts are played on loopback behind an HTTPS proxy, with a certificate from a test CA.
 */
describe('DirectUpstream for paths that are no module (the prefixes go get asks about)', () => {
  let fixtures: FixtureModules;
  let dir: string;
  let host: GoImportHost;
  let upstream: DirectUpstream;

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    dir = await createTempDir('go-import-host-');
    host = await GoImportHost.start({ hosts: ['vanity.test'], dir });
    host
      .answer('/', { status: 200 })
      .answer('/team', {
        status: 200,
        body: '<html><head><meta name="go-import" content="vanity.test/team/tool git https://vanity.test/repos/tool"></head></html>',
      })
      .answer('/gone', { status: 410, body: 'gone\n' })
      .answer('/broken', { status: 500, body: 'internal error\n' })
      .answer('/busy', { status: 503, body: 'try later\n' });
    upstream = new DirectUpstream({
      env: { ...fixtures.directEnv, ...host.env, GONOSUMDB: 'vanity.test' },
      workDir: dir,
    });
  });

  afterAll(async () => {
    await host?.stop();
    await fixtures?.close();
    if (dir) await removeDir(dir);
  });

  it.each([
    ['vanity.test', 'a page with no go-import meta tag', /no go-import meta tags/],
    ['vanity.test/team', 'meta tags for other paths only', /no go-import meta tags/],
    ['vanity.test/nothing', '404 on ?go-get=1', /404 Not Found/],
    ['vanity.test/gone', '410 on ?go-get=1', /410 Gone/],
  ])('%s (%s) is not-found', async (module, _what, said) => {
    const failure = await moduleErrorOf(upstream.fetch(module, 'v1.10.0'));
    expect(failure.kind, failure.message).toBe('not-found');
    expect(failure.message).toMatch(said);
    expect(host.requests).toContain(`${module.slice('vanity.test'.length) || '/'}?go-get=1`);
  });

  it('a path that cannot be a repository on a host the go command knows is not-found, without asking the host', async () => {
    for (const module of ['github.com', 'github.com/team']) {
      const failure = await moduleErrorOf(upstream.fetch(module, 'v1.10.0'));
      expect([failure.kind, failure.message], module).toEqual([
        'not-found',
        `${module}@v1.10.0: invalid github.com import path "${module}"`,
      ]);
    }
    expect(host.connects.filter((target) => target.startsWith('github.com'))).toEqual([]);
  });

  it.each([
    ['vanity.test/broken', /500 Internal Server Error/],
    ['vanity.test/busy', /503 Service Unavailable/],
  ])('%s: the host failing to answer is bad-gateway, not a missing module', async (module, said) => {
    const failure = await moduleErrorOf(upstream.fetch(module, 'v1.10.0'));
    expect(failure.kind, failure.message).toBe('bad-gateway');
    expect(failure.message).toMatch(said);
  });

  it('the bare fixture host, whose HTTPS proxy is a closed loopback port, is bad-gateway: the way out failed, nothing said the module is missing', async () => {
    const closed = new DirectUpstream({ env: fixtures.directEnv, workDir: dir });
    const failure = await moduleErrorOf(closed.fetch('example.test', 'v1.10.0'));
    expect(failure.kind, failure.message).toBe('bad-gateway');
    expect(failure.message).toMatch(
      /unrecognized import path "example\.test": https fetch: .*proxyconnect tcp/,
    );
  });
});
