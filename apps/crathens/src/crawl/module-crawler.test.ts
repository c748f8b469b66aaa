import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { errors } from '@modproxy/errors';
import { sortVersions } from '@modproxy/gomod';
import { UnconfirmedVersions } from '@modproxy/queue';
import { MemoryStorage } from '@modproxy/storage';
import {
  createFixtureModules,
  startRedisServer,
  type FixtureModules,
  type RedisServer,
} from '@modproxy/testing';
import { GitCommand, VcsTagLister, VcsVersionSource, type ModuleVersionSource } from '@modproxy/upstream';
import { ModuleCrawler, type ListRefresher } from './module-crawler';

let fixtures: FixtureModules;
let redisServer: RedisServer;
let redis: Redis;
let prefixes = 0;

beforeAll(async () => {
  [fixtures, redisServer] = await Promise.all([createFixtureModules(), startRedisServer()]);
  redis = new Redis(redisServer.url);
});

afterAll(async () => {
  await redis?.quit();
  await redisServer?.stop();
  await fixtures?.close();
});

/** lathens as the crawl sees it: a list, and a refresh that answers what the go command lists. */
class ListsLikeGo implements ListRefresher {
  readonly refreshes: string[] = [];
  readonly listed = new Map<string, string[]>();

  constructor(readonly upstream: Map<string, string[]>) {}

  async list(module: string) {
    return { versions: this.listed.get(module) ?? [] };
  }

  async refreshList(module: string) {
    this.refreshes.push(module);
    const versions = this.upstream.get(module) ?? [];
    this.listed.set(module, versions);
    return { versions };
  }
}

describe('ModuleCrawler', () => {
  let source: ModuleVersionSource;
  let storage: MemoryStorage;
  let lathens: ListsLikeGo;
  let queued: string[];

  beforeEach(() => {
    source = new VcsVersionSource(new VcsTagLister({ git: new GitCommand({ env: fixtures.directEnv }) }));
    storage = new MemoryStorage();
    // What `go list -m -versions` says for each fixture.
    lathens = new ListsLikeGo(new Map(fixtures.all.map((fixture) => [fixture.path, fixture.versions])));
    queued = [];
  });

  function crawler(options: { prefetch?: string; withLathens?: boolean } = {}): ModuleCrawler {
    return new ModuleCrawler({
      source,
      storage,
      lathens: options.withLathens === false ? undefined : lathens,
      queueFetch: async (module, version) => queued.push(`${module}@${version}`),
      prefetch: (module) => options.prefetch !== undefined && module.startsWith(options.prefetch),
      unconfirmed: new UnconfirmedVersions({ redis, prefix: `crawler${(prefixes += 1)}` }),
    });
  }

  it('refreshes lathens when tags show new versions, prefetches them for prefetch modules, and is quiet after', async () => {
    const crawl = crawler({ prefetch: fixtures.hello.path });
    const first = await crawl.crawl(fixtures.hello.path);
    expect(first).toMatchObject({
      result: 'crawled',
      refreshed: true,
      found: fixtures.hello.versions,
      unlisted: [],
    });
    expect(queued).toEqual(fixtures.hello.versions.map((version) => `${fixtures.hello.path}@${version}`));
    expect(lathens.refreshes).toEqual([fixtures.hello.path]);

    // Nothing new: no refresh, nothing queued.
    expect(await crawl.crawl(fixtures.hello.path)).toMatchObject({ found: [], refreshed: false, queued: [] });
    expect(lathens.refreshes).toHaveLength(1);

    await fixtures.hello.repo.tag('v1.20.0');
    lathens.upstream.set(fixtures.hello.path, [...fixtures.hello.versions, 'v1.20.0']);
    expect(await crawl.crawl(fixtures.hello.path)).toMatchObject({ found: ['v1.20.0'], queued: ['v1.20.0'] });
    expect(lathens.refreshes).toHaveLength(2);
  });

  it('asks lathens once about +incompatible candidates it does not list, and lists those it does', async () => {
    const crawl = crawler({ prefetch: 'example.test/' });
    // `major`'s v2 tags belong to its /v2 module: the go command does not list them for v1.
    expect(await crawl.crawl(fixtures.major.path)).toMatchObject({ found: ['v1.0.0'], queued: ['v1.0.0'] });
    expect(await crawl.crawl(fixtures.major.path)).toMatchObject({ found: [], refreshed: false });
    expect(lathens.refreshes).toEqual([fixtures.major.path]);
    // `legacy` has no go.mod: v3.0.0+incompatible is listed, so it is found and fetched.
    const legacy = await crawl.crawl(fixtures.legacy.path);
    expect(legacy).toMatchObject({ found: sortVersions(fixtures.legacy.versions) });
    expect(queued).toContain(`${fixtures.legacy.path}@v3.0.0+incompatible`);
  });

  it('does not fetch what is stored, nor modules outside PREFETCH_MODULES', async () => {
    await storage.save({
      module: fixtures.mixedCase.path,
      version: 'v1.0.0',
      info: Buffer.from('{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}'),
      mod: Buffer.from(`module ${fixtures.mixedCase.path}\n`),
      zip: Readable.from([Buffer.from('zip')]),
    });
    expect(await crawler({ prefetch: fixtures.mixedCase.path }).crawl(fixtures.mixedCase.path)).toMatchObject(
      {
        found: ['v1.1.0'],
        queued: ['v1.1.0'],
      },
    );
    expect(await crawler({ prefetch: 'elsewhere.test' }).crawl(fixtures.hello.path)).toMatchObject({
      queued: [],
    });
  });

  it('without lathens, prefetches only what the tags list for certain', async () => {
    const result = await crawler({ prefetch: 'example.test', withLathens: false }).crawl(
      fixtures.legacy.path,
    );
    expect(result).toMatchObject({ found: ['v1.0.0'], refreshed: false, queued: ['v1.0.0'] });
  });

  it('skips modules that are not upstream or not in git, and lets other failures retry', async () => {
    expect(await crawler().crawl(fixtures.missingModule)).toMatchObject({ result: 'not-upstream' });
    const failing = (error: Error): ModuleVersionSource => ({
      name: 'failing',
      list: async () => {
        throw error;
      },
      close: async () => undefined,
    });
    source = failing(errors.failedPrecondition('upstream.vcs.resolve', 'an hg repository'));
    expect(await crawler().crawl('vanity.test/hg')).toMatchObject({ result: 'not-crawlable' });
    source = failing(errors.badGateway('upstream.vcs.list', 'host down'));
    await expect(crawler().crawl('vanity.test/down')).rejects.toThrow('host down');
  });
});
