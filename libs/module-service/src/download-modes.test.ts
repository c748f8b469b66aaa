import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { errors, isModuleError, type ModuleError } from '@modproxy/errors';
import { MemoryStorage, type CallOptions } from '@modproxy/storage';
import type { FetchedVersion, Upstream } from '@modproxy/upstream';
import { UpstreamVersions } from '@modproxy/versions';
import { DownloadPolicy, type DownloadRule } from './download-policy';
import { ModuleService } from './module-service';
import { isRedirectToUpstream, RedirectToUpstream } from './redirect-to-upstream';
import type { VersionFetcher } from './version-fetcher';

const MODULE = 'example.test/modes';

/** An upstream that lists v1.0.0 and v1.1.0 of every module and records what it was asked. */
class ListingUpstream implements Upstream {
  readonly name = 'listing';
  readonly calls: string[] = [];
  async list(module: string): Promise<string[]> {
    this.calls.push(`list ${module}`);
    return ['v1.0.0', 'v1.1.0'];
  }
  async latest(module: string): Promise<Buffer> {
    this.calls.push(`latest ${module}`);
    return Buffer.from('{"Version":"v1.1.0","Time":"2024-01-01T00:00:00Z"}');
  }
  async info(module: string, query: string): Promise<Buffer> {
    this.calls.push(`info ${module}@${query}`);
    return Buffer.from('{"Version":"v1.1.0","Time":"2024-01-01T00:00:00Z"}');
  }
  async fetch(module: string, version: string): Promise<FetchedVersion> {
    this.calls.push(`fetch ${module}@${version}`);
    throw errors.internal('test.fetch', 'the service must fetch through its fetcher only');
  }
}

/**
 * A fetcher as the queue is one: it records what it was asked to fetch, and "stores" a version
 * (through the storage port) when the test lets it, or fails with the error it was given.
 */
class RecordingFetcher implements VersionFetcher {
  readonly fetched: string[] = [];
  readonly enqueued: string[] = [];
  readonly signals: Array<AbortSignal | undefined> = [];
  failWith: ModuleError | undefined;

  constructor(private readonly storage: MemoryStorage) {}

  async fetch(module: string, version: string, options: CallOptions = {}): Promise<void> {
    this.fetched.push(`${module}@${version}`);
    this.signals.push(options.signal);
    if (this.failWith) throw this.failWith;
    await store(this.storage, module, version);
  }

  async enqueue(module: string, version: string): Promise<void> {
    this.enqueued.push(`${module}@${version}`);
  }
}

async function store(storage: MemoryStorage, module: string, version: string): Promise<void> {
  await storage.save({
    module,
    version,
    info: Buffer.from(JSON.stringify({ Version: version, Time: '2024-01-01T00:00:00Z' })),
    mod: Buffer.from(`module ${module}\n`),
    zip: Readable.from([Buffer.from('zip bytes')]),
  });
}

function setup(policy: DownloadPolicy) {
  const storage = new MemoryStorage();
  const upstream = new ListingUpstream();
  const fetcher = new RecordingFetcher(storage);
  const requested: string[] = [];
  const service = new ModuleService({
    storage,
    upstream,
    versions: new UpstreamVersions({ storage, upstream }),
    downloadPolicy: policy,
    fetcher,
    events: { requested: (module) => requested.push(module) },
  });
  return { storage, upstream, fetcher, service, requested };
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => 'resolved',
    (error: unknown) => error,
  );
}

describe('DownloadPolicy', () => {
  const rules: DownloadRule[] = [
    { pattern: 'example.test/private', mode: 'none' },
    { pattern: '*.corp.test', mode: 'redirect', redirectUrl: 'https://corp-proxy.test/go/' },
    { pattern: 'example.test/private/open,example.test/lazy', mode: 'async' },
    { pattern: 'example.test', mode: 'async_redirect' },
  ];
  const policy = new DownloadPolicy({ mode: 'sync', redirectUrl: 'https://proxy.test', rules });

  it('takes the first rule whose GOPRIVATE-style pattern matches, else the default', () => {
    // Patterns match leading path elements, as GOPRIVATE does.
    expect(policy.decide('example.test/private')).toEqual({ mode: 'none' });
    expect(policy.decide('example.test/private/open/x')).toEqual({ mode: 'none' });
    expect(policy.decide('example.test/privateer')).toEqual({
      mode: 'async_redirect',
      redirectUrl: 'https://proxy.test',
    });
    expect(policy.decide('example.test/lazy/v2')).toEqual({ mode: 'async' });
    expect(policy.decide('git.corp.test/team/app')).toEqual({
      mode: 'redirect',
      redirectUrl: 'https://corp-proxy.test/go',
    });
    expect(policy.decide('corp.test/app')).toEqual({ mode: 'sync' });
    expect(policy.decide('golang.org/x/mod')).toEqual({ mode: 'sync' });
    expect(policy.fetchesAny).toBe(true);
    expect(
      new DownloadPolicy({ mode: 'none', rules: [{ pattern: 'a.test', mode: 'none' }] }).fetchesAny,
    ).toBe(false);
  });

  it('refuses a redirect mode with nowhere to redirect to', () => {
    expect(() => new DownloadPolicy({ mode: 'redirect' })).toThrow(/default mode redirects/);
    expect(() => new DownloadPolicy({ rules: [{ pattern: 'a.test', mode: 'async_redirect' }] })).toThrow(
      /rule 0 redirects/,
    );
  });
});

describe('ModuleService download modes through the fetcher port', () => {
  it('sync: a miss waits for the fetcher, which gets the caller signal, and is served from storage', async () => {
    const { fetcher, service, upstream, requested } = setup(DownloadPolicy.uniform('sync'));
    const signal = new AbortController().signal;
    let fetchedNow = 0;
    const mod = await service.mod(MODULE, 'v1.0.0', { signal, onFetched: () => (fetchedNow += 1) });
    expect(mod.toString()).toBe(`module ${MODULE}\n`);
    expect(fetcher.fetched).toEqual([`${MODULE}@v1.0.0`]);
    expect(fetcher.signals).toEqual([signal]);
    expect(fetchedNow).toBe(1);
    // Stored now: no fetch, and the caller is not told of one.
    const zip = await service.zip(MODULE, 'v1.0.0', { onFetched: () => (fetchedNow += 1) });
    zip.stream.destroy();
    expect([fetcher.fetched.length, fetchedNow]).toEqual([1, 1]);
    expect(requested).toEqual([MODULE]);
    expect(upstream.calls).toEqual([]);
  });

  it('sync: the fetcher failure reaches the caller with its kind and retry hint', async () => {
    const { fetcher, service, storage } = setup(DownloadPolicy.uniform('sync'));
    for (const failure of [
      errors.notFound('queue.fetch', `${MODULE}@v1.0.0: not found upstream`),
      errors.badGateway('queue.fetch', 'upstream failed: 500'),
      errors.timeout('queue.fetch', 'not fetched within 1000 ms'),
      errors.unavailable('queue.fetch', 'upstream busy', { retryAfterSeconds: 30 }),
    ]) {
      fetcher.failWith = failure;
      const error = await caught(service.info(MODULE, 'v1.0.0'));
      expect(isModuleError(error) ? [error.kind, error.message, error.retryAfterSeconds] : error).toEqual([
        failure.kind,
        failure.message,
        failure.retryAfterSeconds,
      ]);
    }
    expect(await storage.exists(MODULE, 'v1.0.0')).toBe(false);
  });

  it('async: a miss is queued and answered not-found at once', async () => {
    const { fetcher, service } = setup(DownloadPolicy.uniform('async'));
    const error = await caught(service.zip(MODULE, 'v1.0.0'));
    expect(isModuleError(error, 'not-found')).toBe(true);
    expect((error as ModuleError).message).toBe(`${MODULE}@v1.0.0 is being fetched; try again shortly`);
    expect([fetcher.enqueued, fetcher.fetched]).toEqual([[`${MODULE}@v1.0.0`], []]);
  });

  it('redirect: a miss is sent to the upstream and nothing is fetched; a stored version is served here', async () => {
    const { fetcher, service, storage } = setup(DownloadPolicy.uniform('redirect', 'https://proxy.test/'));
    for (const read of [
      () => service.info(MODULE, 'v1.0.0'),
      () => service.mod(MODULE, 'v1.0.0'),
      () => service.zip(MODULE, 'v1.0.0'),
      () => service.info(MODULE, 'main'),
    ]) {
      const error = await caught(read());
      expect(isRedirectToUpstream(error)).toBe(true);
      expect((error as RedirectToUpstream).baseUrl).toBe('https://proxy.test');
    }
    expect([fetcher.fetched, fetcher.enqueued]).toEqual([[], []]);
    await store(storage, MODULE, 'v1.0.0');
    expect((await service.mod(MODULE, 'v1.0.0')).toString()).toBe(`module ${MODULE}\n`);
    // list and latest are answered here, as Athens does.
    expect((await service.list(MODULE)).versions).toEqual(['v1.0.0', 'v1.1.0']);
  });

  it('async_redirect: a miss is queued and redirected', async () => {
    const { fetcher, service } = setup(DownloadPolicy.uniform('async_redirect', 'https://proxy.test'));
    expect(isRedirectToUpstream(await caught(service.zip(MODULE, 'v1.0.0')))).toBe(true);
    expect([fetcher.enqueued, fetcher.fetched]).toEqual([[`${MODULE}@v1.0.0`], []]);
  });

  it('none for a pattern: no fetch, and list and latest from storage only, while other modules fetch', async () => {
    const { fetcher, service, upstream, storage } = setup(
      new DownloadPolicy({ rules: [{ pattern: 'example.test/modes', mode: 'none' }] }),
    );
    expect(isModuleError(await caught(service.zip(MODULE, 'v1.0.0')), 'not-found')).toBe(true);
    expect(isModuleError(await caught(service.list(MODULE)), 'not-found')).toBe(true);
    expect(isModuleError(await caught(service.info(MODULE, 'main')), 'not-found')).toBe(true);
    await store(storage, MODULE, 'v0.9.0');
    expect((await service.list(MODULE)).versions).toEqual(['v0.9.0']);
    expect(JSON.parse((await service.latest(MODULE)).info.toString()).Version).toBe('v0.9.0');
    expect(upstream.calls).toEqual([]);
    expect(fetcher.fetched).toEqual([]);

    (await service.zip('example.test/other', 'v1.0.0')).stream.destroy();
    expect(fetcher.fetched).toEqual(['example.test/other@v1.0.0']);
    expect((await service.list('example.test/other')).versions).toEqual(['v1.0.0', 'v1.1.0']);
  });

  it('tells who asks about which module on list, latest and a miss, never on a stored read', async () => {
    const { service, storage, requested } = setup(DownloadPolicy.uniform('sync'));
    await store(storage, 'example.test/stored', 'v1.0.0');
    await service.mod('example.test/stored', 'v1.0.0');
    await service.list('example.test/listed');
    await service.latest('example.test/latest');
    await service.mod('example.test/missed', 'v1.0.0');
    expect(requested).toEqual(['example.test/listed', 'example.test/latest', 'example.test/missed']);
  });
});
