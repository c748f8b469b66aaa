import { Readable, Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@modproxy/observability';
import { MemoryStorage } from '@modproxy/storage';
import { loadProxyConfig } from './config';
import { startProxy, type RunningProxy } from './server';

const silent = () =>
  createLogger({
    service: 'proxy-test',
    level: 'warn',
    destination: new Writable({ write: (_chunk, _encoding, done) => done() }),
  });

const T0 = Date.parse('2024-03-01T10:00:00.000Z');

/** Memory storage whose saves are dated by the test. */
function datedStorage(): {
  storage: MemoryStorage;
  save(module: string, version: string, at: number): Promise<void>;
} {
  let now = T0;
  const storage = new MemoryStorage({ now: () => now });
  return {
    storage,
    save: async (module, version, at) => {
      now = at;
      await storage.save({
        module,
        version,
        info: Buffer.from(JSON.stringify({ Version: version })),
        mod: Buffer.from(`module ${module}\n`),
        zip: Readable.from([Buffer.from('zip')]),
      });
    },
  };
}

interface IndexLine {
  Path: string;
  Version: string;
  Timestamp: string;
}

describe('feeds: /catalog (Athens) and /index (the public module index)', () => {
  let proxy: RunningProxy | undefined;

  afterEach(async () => {
    await proxy?.shutdown();
    proxy = undefined;
  });

  async function start(storage: MemoryStorage, env: Record<string, string> = {}): Promise<string> {
    const config = loadProxyConfig({ env: { PORT: '0', STORAGE_TYPE: 'memory', UPSTREAM: 'off', ...env } });
    proxy = await startProxy(config, silent(), { storage });
    return proxy.url;
  }

  const index = async (url: string): Promise<IndexLine[]> => {
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    const text = await response.text();
    if (text === '') return [];
    expect(text.endsWith('\n')).toBe(true);
    return text
      .slice(0, -1)
      .split('\n')
      .map((line) => JSON.parse(line) as IndexLine);
  };

  it('/catalog pages through every stored version in module order, with token and pagesize', async () => {
    const { storage, save } = datedStorage();
    const stored = [
      ['example.test/b', 'v1.0.0'],
      ['example.test/a', 'v1.1.0'],
      ['example.test/a', 'v1.0.0'],
      ['example.test/c/v2', 'v2.0.0'],
      ['example.test/c', 'v0.1.0'],
    ] as const;
    for (const [i, [module, version]] of stored.entries()) await save(module, version, T0 + i);
    const base = await start(storage);

    const pages: unknown[] = [];
    let next: string | undefined;
    do {
      const response = await fetch(
        `${base}/catalog?pagesize=2${next ? `&token=${encodeURIComponent(next)}` : ''}`,
      );
      expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
      const page = (await response.json()) as { modules: unknown[]; next?: string };
      pages.push(page);
      next = page.next;
    } while (next);
    expect(pages).toEqual([
      {
        modules: [
          { module: 'example.test/a', version: 'v1.0.0' },
          { module: 'example.test/a', version: 'v1.1.0' },
        ],
        next: expect.any(String),
      },
      {
        modules: [
          { module: 'example.test/b', version: 'v1.0.0' },
          { module: 'example.test/c', version: 'v0.1.0' },
        ],
        next: expect.any(String),
      },
      // Athens leaves `next` out on the last page.
      { modules: [{ module: 'example.test/c/v2', version: 'v2.0.0' }] },
    ]);
    // Athens' default page holds them all.
    expect(((await (await fetch(`${base}/catalog`)).json()) as { modules: unknown[] }).modules).toHaveLength(
      5,
    );
  });

  it('/index lists versions in the order they were stored, from since (inclusive), limit lines', async () => {
    const { storage, save } = datedStorage();
    await save('example.test/late', 'v1.0.0', T0 + 3_000);
    await save('example.test/early', 'v1.0.0', T0 + 1_000);
    await save('example.test/middle', 'v1.0.0', T0 + 2_000);
    await save('example.test/early', 'v1.1.0', T0 + 2_000);
    const base = await start(storage);

    expect(await index(`${base}/index`)).toEqual([
      { Path: 'example.test/early', Version: 'v1.0.0', Timestamp: '2024-03-01T10:00:01.000Z' },
      // Equal times: by module path, then version.
      { Path: 'example.test/early', Version: 'v1.1.0', Timestamp: '2024-03-01T10:00:02.000Z' },
      { Path: 'example.test/middle', Version: 'v1.0.0', Timestamp: '2024-03-01T10:00:02.000Z' },
      { Path: 'example.test/late', Version: 'v1.0.0', Timestamp: '2024-03-01T10:00:03.000Z' },
    ]);
    // since is inclusive and may carry any RFC 3339 precision or offset.
    expect((await index(`${base}/index?since=2024-03-01T10:00:02Z`)).map((l) => l.Path)).toEqual([
      'example.test/early',
      'example.test/middle',
      'example.test/late',
    ]);
    expect(
      (await index(`${base}/index?since=2024-03-01T11:00:02.000000001%2B01:00`)).map((l) => l.Path),
    ).toEqual(['example.test/late']);
    expect(await index(`${base}/index?since=2024-03-01T10:00:03.001Z`)).toEqual([]);
    const [first, second] = [
      await index(`${base}/index?limit=2`),
      await index(`${base}/index?limit=2&since=2024-03-01T10:00:02.000Z`),
    ];
    expect(first.map((l) => l.Version)).toEqual(['v1.0.0', 'v1.1.0']);
    // A client pages with the last Timestamp as since; that entry comes again, as on index.golang.org.
    expect(second.map((l) => `${l.Path}@${l.Version}`)).toEqual([
      'example.test/early@v1.1.0',
      'example.test/middle@v1.0.0',
    ]);
  });

  it('/index answers at most 2000 lines by default and whatever limit asks', async () => {
    const { storage, save } = datedStorage();
    for (let i = 0; i < 2_005; i++) await save(`example.test/m${i % 10}`, `v1.0.${i}`, T0 + i);
    const base = await start(storage);
    const all = await index(`${base}/index`);
    expect(all).toHaveLength(2_000);
    expect(all[0]).toEqual({
      Path: 'example.test/m0',
      Version: 'v1.0.0',
      Timestamp: new Date(T0).toISOString(),
    });
    expect(all.at(-1)?.Timestamp).toBe(new Date(T0 + 1_999).toISOString());
    expect(await index(`${base}/index?limit=5000`)).toHaveLength(2_000);
    expect(await index(`${base}/index?limit=3`)).toEqual(all.slice(0, 3));
  });

  it('leaves out modules the module filter refuses', async () => {
    const { storage, save } = datedStorage();
    await save('example.test/open', 'v1.0.0', T0);
    await save('example.test/secret', 'v1.0.0', T0 + 1);
    await save('example.test/secret', 'v1.1.0', T0 + 2);
    await save('example.test/open', 'v1.1.0', T0 + 3);
    const base = await start(storage, { DENIED_MODULES: 'example.test/secret' });
    expect((await index(`${base}/index?limit=2`)).map((l) => `${l.Path}@${l.Version}`)).toEqual([
      'example.test/open@v1.0.0',
      'example.test/open@v1.1.0',
    ]);
    const catalog = (await (await fetch(`${base}/catalog`)).json()) as { modules: Array<{ module: string }> };
    expect(catalog.modules.map((m) => m.module)).toEqual(['example.test/open', 'example.test/open']);
  });

  it('refuses bad parameters with a 400 and a text body', async () => {
    const { storage } = datedStorage();
    const base = await start(storage);
    for (const query of [
      '/index?since=yesterday',
      '/index?since=2024-03-01',
      '/index?since=2024-13-01T00:00:00Z',
      '/index?limit=0',
      '/index?limit=-1',
      '/index?limit=ten',
      '/index?limit=1&limit=2',
      '/catalog?pagesize=0',
      '/catalog?pagesize=1.5',
      '/catalog?token=forged',
      `/catalog?token=${Buffer.from('["../x","v1.0.0"]').toString('base64url')}`,
    ]) {
      const response = await fetch(`${base}${query}`);
      expect([response.status, response.headers.get('content-type')], query).toEqual([
        400,
        'text/plain; charset=utf-8',
      ]);
      expect((await response.text()).length, query).toBeGreaterThan(1);
    }
  });
});
