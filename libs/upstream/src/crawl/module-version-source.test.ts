import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '@modproxy/config';
import { isModuleError } from '@modproxy/errors';
import { sortVersions } from '@modproxy/gomod';
import {
  CountingUpstream,
  createFixtureModules,
  syntheticGoproxyAnswer,
  type FixtureModules,
} from '@modproxy/testing';
import { upstreamConfigShape } from '../upstream-config';
import { createVersionSourceFromConfig, versionSourceConfigShape } from './module-version-source';
import { politenessHost } from './upstream-host';

const schema = z.object({ ...upstreamConfigShape, ...versionSourceConfigShape });
let fixtures: FixtureModules;
let proxy: CountingUpstream;

beforeAll(async () => {
  fixtures = await createFixtureModules();
  proxy = await CountingUpstream.start({
    answer: (path) =>
      path.startsWith('/proxied.example/')
        ? syntheticGoproxyAnswer(path, { versions: ['v1.0.0', 'v1.1.0'] })
        : { status: 404, body: 'not here' },
  });
});

afterAll(async () => {
  await proxy?.close();
  await fixtures?.close();
});

describe('the crawl version source from UPSTREAM', () => {
  it("lists through the proxy's /@v/list and falls through to git ls-remote after its 404", async () => {
    const config = loadConfig(schema, { env: { UPSTREAM: `${proxy.url},direct` } });
    const source = createVersionSourceFromConfig(config, { gitEnv: fixtures.directEnv });
    try {
      const proxied = await source.list('proxied.example/m');
      expect(proxied).toEqual({ versions: ['v1.0.0', 'v1.1.0'], unconfirmed: [], source: proxy.url });
      const direct = await source.list(fixtures.hello.path);
      expect(sortVersions(direct.versions)).toEqual(sortVersions(fixtures.hello.versions));
      expect(direct.source).toBe(`git ls-remote ${fixtures.hello.repoUrl}`);
      expect(proxy.requests.map((request) => request.path)).toEqual([
        '/proxied.example/m/@v/list',
        `/${fixtures.hello.escapedPath}/@v/list`,
      ]);
    } finally {
      await source.close();
    }
  });

  it('never lists a module the module filter denies', async () => {
    const config = loadConfig(schema, { env: { UPSTREAM: 'direct', DENIED_MODULES: 'example.test' } });
    const source = createVersionSourceFromConfig(config, { gitEnv: fixtures.directEnv });
    const error = await source.list(fixtures.hello.path).catch((thrown: unknown) => thrown);
    expect(isModuleError(error, 'forbidden')).toBe(true);
    await source.close();
  });

  it('counts politeness against the first entry of the list', () => {
    expect(politenessHost('direct', 'GitHub.com/o/r')).toBe('github.com');
    expect(politenessHost('https://user:pw@Proxy.Example:8443/go,direct', 'github.com/o/r')).toBe(
      'proxy.example:8443',
    );
    expect(politenessHost('off', 'github.com/o/r')).toBeUndefined();
  });
});
