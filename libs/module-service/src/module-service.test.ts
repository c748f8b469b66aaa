import { writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { errors, isModuleError, type ModuleError } from '@modproxy/errors';
import { ModuleFilter } from '@modproxy/gomod';
import { MemoryStorage } from '@modproxy/storage';
import { buildZip, createTempDir, removeDir } from '@modproxy/testing';
import type { FetchedVersion, Upstream } from '@modproxy/upstream';
import { UpstreamVersions } from '@modproxy/versions';
import { type DownloadMode, ModuleService, type ModuleServiceOptions } from './module-service';

const MODULE = 'example.test/unit';

interface Published {
  info: Buffer;
  mod: Buffer;
  zip: Buffer;
}

/** An in-memory upstream for unit tests: serves what the test published, counts fetches. */
class TestUpstream implements Upstream {
  readonly name = 'test';
  readonly published = new Map<string, Published>();
  /** Version queries (branch names) and the version each resolves to. */
  readonly queries = new Map<string, string>();
  fetches = 0;
  /** Every call of any method, as `method module[@version]`. */
  readonly calls: string[] = [];
  /** The signals calls were given, by method. */
  readonly signals: Record<string, AbortSignal[]> = {};
  failWith: Error | undefined;
  /** While set, info and fetch wait until it resolves, or until their signal fires (and then fail as `cancelled`, as an upstream does). */
  hold: Promise<void> | undefined;

  constructor(private readonly dir: string) {}

  private async called(method: string, subject: string, signal?: AbortSignal): Promise<void> {
    this.calls.push(`${method} ${subject}`);
    (this.signals[method] ??= []).push(signal ?? new AbortController().signal);
    if (!this.hold) return;
    await new Promise<void>((resolve, reject) => {
      signal?.addEventListener('abort', () => reject(errors.cancelled(`test.${method}`, 'signal fired')));
      this.hold?.then(resolve, reject);
    });
  }

  async list(module: string): Promise<string[]> {
    await this.called('list', module);
    return [...this.published.keys()]
      .filter((key) => key.startsWith(`${module}@`))
      .map((key) => key.split('@')[1] ?? '');
  }

  async latest(module: string): Promise<Buffer> {
    await this.called('latest', module);
    throw errors.notFound('test.latest', `no latest for ${module}`);
  }

  async info(module: string, query: string, options: { signal?: AbortSignal } = {}): Promise<Buffer> {
    await this.called('info', `${module}@${query}`, options.signal);
    const found = this.published.get(`${module}@${this.queries.get(query) ?? query}`);
    if (!found) throw errors.notFound('test.info', `${module}@${query} not found`);
    return found.info;
  }

  async fetch(
    module: string,
    version: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<FetchedVersion> {
    this.fetches += 1;
    await this.called('fetch', `${module}@${version}`, options.signal);
    if (this.failWith) throw this.failWith;
    const found = this.published.get(`${module}@${version}`);
    if (!found) throw errors.notFound('test.fetch', `${module}@${version} not found`);
    const zipPath = join(this.dir, `${this.fetches}.zip`);
    await writeFile(zipPath, found.zip);
    return {
      module,
      version,
      info: found.info,
      mod: found.mod,
      zipSize: found.zip.length,
      zipPath,
      openZip: () => createReadStream(zipPath),
      release: async () => undefined,
    };
  }
}

async function publish(
  upstream: TestUpstream,
  version: string,
  files: Record<string, string>,
): Promise<void> {
  const mod = `module ${MODULE}\n\ngo 1.21\n`;
  const entries = Object.entries({ 'go.mod': mod, ...files }).map(([name, data]) => ({
    name: `${MODULE}@${version}/${name}`,
    data,
  }));
  upstream.published.set(`${MODULE}@${version}`, {
    info: Buffer.from(JSON.stringify({ Version: version, Time: '2024-01-01T00:00:00Z' })),
    mod: Buffer.from(mod),
    zip: await buildZip(entries),
  });
}

describe('ModuleService', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await createTempDir('module-service-test-');
  });
  afterAll(() => removeDir(dir));

  afterEach(() => {
    vi.useRealTimers();
  });

  function setup(
    mode: DownloadMode = 'sync',
    options: Partial<Omit<ModuleServiceOptions, 'storage' | 'upstream' | 'versions'>> = {},
  ) {
    const storage = new MemoryStorage();
    const upstream = new TestUpstream(dir);
    const versions = new UpstreamVersions({ storage, ...(mode === 'none' ? {} : { upstream }) });
    const failures: ModuleError[] = [];
    const service = new ModuleService({
      storage,
      upstream,
      versions,
      downloadMode: mode,
      events: { fetchFailed: (_module, _version, error) => failures.push(error) },
      ...options,
    });
    return { storage, upstream, service, failures };
  }

  /** A hold on the test upstream, and its release. */
  function holdUpstream(upstream: TestUpstream): () => void {
    let release = (): void => undefined;
    upstream.hold = new Promise<void>((resolve) => {
      release = () => {
        upstream.hold = undefined;
        resolve();
      };
    });
    return release;
  }

  const kindOf = (promise: Promise<unknown>): Promise<string> =>
    promise.then(
      () => 'resolved',
      (error: unknown) => (isModuleError(error) ? error.kind : `foreign ${String(error)}`),
    );

  it('fetches a missing version once, stores it, and serves later requests from storage', async () => {
    const { storage, upstream, service } = setup();
    await publish(upstream, 'v1.0.0', { 'a.go': 'package unit\n' });
    const results = await Promise.all(Array.from({ length: 20 }, () => service.mod(MODULE, 'v1.0.0')));
    expect(new Set(results.map((mod) => mod.toString())).size).toBe(1);
    expect(upstream.fetches).toBe(1);
    expect(await storage.exists(MODULE, 'v1.0.0')).toBe(true);
    await service.zip(MODULE, 'v1.0.0').then(({ stream }) => stream.destroy());
    expect(upstream.fetches).toBe(1);
  });

  it('never stores a version whose zip breaks the module zip rules, and says upstream is at fault', async () => {
    const { storage, upstream, service } = setup();
    await publish(upstream, 'v1.0.0', {});
    const published = upstream.published.get(`${MODULE}@v1.0.0`)!;
    published.zip = await buildZip([{ name: `other.test/x@v1.0.0/go.mod`, data: 'module other.test/x\n' }]);
    const failure = await service.zip(MODULE, 'v1.0.0').catch((error: unknown) => error);
    expect(isModuleError(failure, 'bad-gateway')).toBe(true);
    expect(await storage.exists(MODULE, 'v1.0.0')).toBe(false);
  });

  it('never stores a version whose go.mod differs from the one in its zip', async () => {
    const { storage, upstream, service } = setup();
    await publish(upstream, 'v1.0.0', {});
    upstream.published.get(`${MODULE}@v1.0.0`)!.mod = Buffer.from(
      `module ${MODULE}\n\nrequire evil.test/x v1.0.0\n`,
    );
    const failure = await service.mod(MODULE, 'v1.0.0').catch((error: unknown) => error);
    expect(isModuleError(failure, 'bad-gateway')).toBe(true);
    expect(await storage.list(MODULE)).toEqual([]);
  });

  it('does not remember a failed fetch', async () => {
    const { upstream, service } = setup();
    await publish(upstream, 'v1.0.0', {});
    upstream.failWith = errors.badGateway('test.fetch', 'upstream down');
    await expect(service.info(MODULE, 'v1.0.0')).rejects.toMatchObject({ kind: 'bad-gateway' });
    upstream.failWith = undefined;
    const { info } = await service.info(MODULE, 'v1.0.0');
    expect(JSON.parse(info.toString()).Version).toBe('v1.0.0');
    expect(upstream.fetches).toBe(2);
  });

  it('in async mode answers not-found at once and stores the version in the background', async () => {
    const { storage, upstream, service } = setup('async');
    await publish(upstream, 'v1.0.0', {});
    await expect(service.zip(MODULE, 'v1.0.0')).rejects.toMatchObject({ kind: 'not-found' });
    await expect.poll(() => storage.exists(MODULE, 'v1.0.0')).toBe(true);
    const zip = await service.zip(MODULE, 'v1.0.0');
    zip.stream.destroy();
    expect(zip.size).toBeGreaterThan(0);
  });

  it('in none mode never asks upstream', async () => {
    const { upstream, service } = setup('none');
    await publish(upstream, 'v1.0.0', {});
    await expect(service.zip(MODULE, 'v1.0.0')).rejects.toMatchObject({ kind: 'not-found' });
    await expect(service.list(MODULE)).rejects.toMatchObject({ kind: 'not-found' });
    expect(upstream.fetches).toBe(0);
  });

  it('rejects invalid module paths and non-canonical versions before any I/O', async () => {
    const { upstream, service } = setup();
    await expect(service.zip('Example.test/x', 'v1.0.0')).rejects.toMatchObject({ kind: 'invalid-argument' });
    await expect(service.zip(MODULE, 'v1.0')).rejects.toMatchObject({ kind: 'invalid-argument' });
    await expect(service.info(MODULE, 'bad version!')).rejects.toMatchObject({ kind: 'invalid-argument' });
    expect(upstream.fetches).toBe(0);
  });

  it('lists stored and upstream versions together, without pseudo-versions', async () => {
    const { upstream, service } = setup();
    await publish(upstream, 'v1.1.0', {});
    await publish(upstream, 'v0.0.0-20240101000000-abcdefabcdef', {});
    await service.mod(MODULE, 'v0.0.0-20240101000000-abcdefabcdef');
    upstream.published.delete(`${MODULE}@v0.0.0-20240101000000-abcdefabcdef`);
    await publish(upstream, 'v1.2.0', {});
    await service.mod(MODULE, 'v1.2.0');
    upstream.published.delete(`${MODULE}@v1.2.0`);
    expect((await service.list(MODULE)).versions).toEqual(['v1.1.0', 'v1.2.0']);
  });

  it('refuses a denied module with forbidden on every endpoint, even when it is stored, and never asks upstream', async () => {
    const { storage, upstream, service: unfiltered } = setup();
    await publish(upstream, 'v1.0.0', {});
    upstream.queries.set('main', 'v1.0.0');
    // Stored before the filter said no: still not served.
    await unfiltered.mod(MODULE, 'v1.0.0');
    upstream.calls.length = 0;
    const service = new ModuleService({
      storage,
      upstream,
      versions: new UpstreamVersions({ storage, upstream }),
      moduleFilter: new ModuleFilter({ allow: 'example.test', deny: 'example.test/unit' }),
    });
    const calls = [
      service.list(MODULE),
      service.latest(MODULE),
      service.info(MODULE, 'v1.0.0'),
      service.info(MODULE, 'main'),
      service.mod(MODULE, 'v1.0.0'),
      service.zip(MODULE, 'v1.0.0'),
      service.ensureStored(MODULE, 'v1.0.0'),
      service.list('other.test/x'),
    ];
    expect(await Promise.all(calls.map(kindOf))).toEqual(Array(calls.length).fill('forbidden'));
    const error = (await service.zip(MODULE, 'v1.0.0').catch((caught: unknown) => caught)) as ModuleError;
    expect(error.message).toBe("module example.test/unit is denied by this server's module filter");
    expect(upstream.calls).toEqual([]);
    // An allowed module is served as usual.
    expect(await kindOf(service.list('example.test/other'))).toBe('resolved');
    expect(upstream.calls).toEqual(['list example.test/other']);
  });

  it('resolves a version query under the fetch deadline, not a 30 s one', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { upstream, service } = setup('sync', { fetchTimeoutMs: 120_000 });
    await publish(upstream, 'v1.0.0', {});
    upstream.queries.set('main', 'v1.0.0');
    holdUpstream(upstream);
    const answer = kindOf(service.info(MODULE, 'main'));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(upstream.signals['info']?.[0]?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(upstream.signals['info']?.[0]?.aborted).toBe(true);
    // The upstream reported its aborted call as cancelled; nobody cancelled it but the deadline.
    expect(await answer).toBe('timeout');
  });

  it('shares one upstream call among concurrent identical queries and remembers the answer briefly', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { upstream, service } = setup('sync', { queryCacheTtlMs: 10_000 });
    await publish(upstream, 'v1.0.0', {});
    upstream.queries.set('main', 'v1.0.0');
    const release = holdUpstream(upstream);
    const answers = Array.from({ length: 20 }, () => service.info(MODULE, 'main'));
    await expect.poll(() => upstream.calls.length).toBe(1);
    release();
    const infos = await Promise.all(answers);
    expect(new Set(infos.map(({ info }) => JSON.parse(info.toString()).Version))).toEqual(
      new Set(['v1.0.0']),
    );
    expect(infos.every(({ immutable }) => !immutable)).toBe(true);
    expect(upstream.calls).toEqual([`info ${MODULE}@main`, `fetch ${MODULE}@v1.0.0`]);
    // Within the TTL the answer comes from memory; after it, upstream is asked again.
    vi.advanceTimersByTime(9_000);
    await service.info(MODULE, 'main');
    expect(upstream.calls.filter((call) => call.startsWith('info'))).toHaveLength(1);
    vi.advanceTimersByTime(1_001);
    await service.info(MODULE, 'main');
    expect(upstream.calls.filter((call) => call.startsWith('info'))).toHaveLength(2);
  });

  it('never remembers a query when the cache is off or the query failed', async () => {
    const { upstream, service } = setup('sync', { queryCacheTtlMs: 0 });
    await publish(upstream, 'v1.0.0', {});
    expect(await kindOf(service.info(MODULE, 'main'))).toBe('not-found');
    upstream.queries.set('main', 'v1.0.0');
    await service.info(MODULE, 'main');
    await service.info(MODULE, 'main');
    expect(upstream.calls.filter((call) => call.startsWith('info'))).toHaveLength(3);
  });

  it('lets a caller leave a shared fetch with cancelled (a ModuleError), while the fetch goes on for the others', async () => {
    const { storage, upstream, service, failures } = setup();
    await publish(upstream, 'v1.0.0', {});
    const release = holdUpstream(upstream);
    const leaving = new AbortController();
    const left = service.zip(MODULE, 'v1.0.0', { signal: leaving.signal }).catch((error: unknown) => error);
    const staying = service.mod(MODULE, 'v1.0.0');
    const timedOut = service
      .info(MODULE, 'v1.0.0', { signal: AbortSignal.abort(new DOMException('deadline', 'TimeoutError')) })
      .catch((error: unknown) => error);
    await expect.poll(() => upstream.fetches).toBe(1);
    leaving.abort();
    const error = await left;
    expect(isModuleError(error, 'cancelled')).toBe(true);
    expect((error as ModuleError).message).toBe(`${MODULE}@v1.0.0: cancelled by the caller`);
    expect(isModuleError(await timedOut, 'timeout')).toBe(true);
    release();
    expect((await staying).toString()).toContain(`module ${MODULE}`);
    expect(await storage.exists(MODULE, 'v1.0.0')).toBe(true);
    expect([upstream.fetches, failures]).toEqual([1, []]);
  });

  it('reports a shared fetch stopped by its own deadline as timeout, to every caller and to the events', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { upstream, service, failures } = setup('sync', { fetchTimeoutMs: 60_000 });
    await publish(upstream, 'v1.0.0', {});
    holdUpstream(upstream);
    const answers = [kindOf(service.zip(MODULE, 'v1.0.0')), kindOf(service.mod(MODULE, 'v1.0.0'))];
    await vi.advanceTimersByTimeAsync(60_000);
    expect(await Promise.all(answers)).toEqual(['timeout', 'timeout']);
    expect(failures.map((failure) => [failure.kind, failure.module, failure.version])).toEqual([
      ['timeout', MODULE, 'v1.0.0'],
    ]);
  });
});
