import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@modproxy/config';
import { escapePath } from '@modproxy/gomod';
import { createLogger } from '@modproxy/observability';
import { MemoryStorage } from '@modproxy/storage';
import {
  createTempDir,
  removeDir,
  startStaticGoproxy,
  writeLargeModule,
  type LargeModule,
  type StaticGoproxy,
} from '@modproxy/testing';
import { loadProxyConfig } from './config';
import { startProxy, type RunningProxy } from './server';

const silent = () =>
  createLogger({
    service: 'proxy-test',
    level: 'warn',
    destination: new Writable({ write: (_chunk, _encoding, done) => done() }),
  });

async function get(url: string): Promise<{ status: number; body: string; headers: Headers }> {
  const response = await fetch(url, { redirect: 'manual' });
  return { status: response.status, body: await response.text(), headers: response.headers };
}

describe('download modes per module pattern (DOWNLOAD_MODE_FILE)', () => {
  let dir: string;
  let upstream: StaticGoproxy;
  let proxy: RunningProxy | undefined;
  const modules: Record<string, LargeModule> = {};

  beforeAll(async () => {
    dir = await createTempDir('download-mode-file-');
    for (const name of ['fetched', 'denied', 'moved', 'mirrored', 'denied-too']) {
      modules[name] = await writeLargeModule(join(dir, 'goproxy'), {
        module: `example.test/${name}`,
        zipBytes: 4096,
      });
    }
    upstream = await startStaticGoproxy(join(dir, 'goproxy'));
  });

  afterAll(async () => {
    await upstream?.stop();
    await removeDir(dir);
  });

  afterEach(async () => {
    await proxy?.shutdown();
    proxy = undefined;
  });

  async function writeModeFile(name: string, content: unknown): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  }

  const pathOf = (name: string, kind: 'info' | 'mod' | 'zip') =>
    `/${escapePath(modules[name]?.module ?? '')}/@v/v1.0.0.${kind}`;

  it('applies the first matching pattern: sync, none (a denied pattern), redirect to its own or the default upstream', async () => {
    const file = await writeModeFile('modes.json', {
      mode: 'redirect',
      upstream: 'https://default-mirror.test/go/',
      modules: [
        { pattern: 'example.test/fetched', mode: 'sync' },
        // Matches example.test/denied-too's path too: patterns are globs over leading elements.
        { pattern: 'example.test/denied*', mode: 'none' },
        { pattern: 'example.test/moved', mode: 'redirect', upstream: 'https://elsewhere.test' },
        // Never reached: the first match wins.
        { pattern: 'example.test/fetched,example.test/moved', mode: 'none' },
      ],
    });
    const storage = new MemoryStorage();
    const config = loadProxyConfig({
      env: { PORT: '0', STORAGE_TYPE: 'memory', UPSTREAM: upstream.url, DOWNLOAD_MODE_FILE: file },
    });
    proxy = await startProxy(config, silent(), { storage });
    const base = proxy.url;

    const fetched = await fetch(`${base}${pathOf('fetched', 'zip')}`);
    expect(fetched.status).toBe(200);
    expect(
      createHash('sha256')
        .update(Buffer.from(await fetched.arrayBuffer()))
        .digest('hex'),
    ).toBe(modules['fetched']?.zipSha256);

    for (const name of ['denied', 'denied-too']) {
      for (const kind of ['info', 'mod', 'zip'] as const) {
        const answer = await get(`${base}${pathOf(name, kind)}`);
        expect([answer.status, answer.body], `${name} .${kind}`).toEqual([
          404,
          `example.test/${name}@v1.0.0 is not stored\n`,
        ]);
      }
      // Nothing of a `none` module comes from upstream, list and latest included.
      expect((await get(`${base}/example.test/${name}/@v/list`)).status).toBe(404);
    }

    for (const kind of ['info', 'mod', 'zip'] as const) {
      const moved = await get(`${base}${pathOf('moved', kind)}`);
      expect([moved.status, moved.headers.get('location'), moved.headers.get('cache-control')]).toEqual([
        302,
        `https://elsewhere.test${pathOf('moved', kind)}`,
        'no-store',
      ]);
      const mirrored = await get(`${base}${pathOf('mirrored', kind)}`);
      expect([mirrored.status, mirrored.headers.get('location')]).toEqual([
        302,
        `https://default-mirror.test/go${pathOf('mirrored', kind)}`,
      ]);
    }
    // A version query is redirected too; list and latest are answered here, as Athens does.
    expect((await get(`${base}/example.test/moved/@v/main.info`)).headers.get('location')).toBe(
      'https://elsewhere.test/example.test/moved/@v/main.info',
    );
    expect(await get(`${base}/example.test/moved/@v/list`)).toMatchObject({ status: 200, body: 'v1.0.0\n' });

    expect((await storage.catalog({ pageSize: 10 })).entries).toEqual([
      { module: 'example.test/fetched', version: 'v1.0.0' },
    ]);
    for (const name of ['denied', 'denied-too', 'moved', 'mirrored']) {
      expect(upstream.requestCount(pathOf(name, 'zip')), name).toBe(0);
    }
  });

  it('serves a stored version of a redirected module itself', async () => {
    const storage = new MemoryStorage();
    const config = loadProxyConfig({
      env: {
        PORT: '0',
        STORAGE_TYPE: 'memory',
        UPSTREAM: upstream.url,
        DOWNLOAD_MODE: 'redirect',
        DOWNLOAD_REDIRECT_URL: 'https://mirror.test',
      },
    });
    proxy = await startProxy(config, silent(), { storage });
    const moved = modules['moved'] as LargeModule;
    await storage.save({
      module: moved.module,
      version: moved.version,
      info: moved.info,
      mod: moved.mod,
      zip: (await import('node:stream')).Readable.from([moved.zip]),
    });
    const answer = await fetch(`${proxy.url}${pathOf('moved', 'zip')}`, { redirect: 'manual' });
    expect([answer.status, answer.headers.get('x-modproxy-source')]).toEqual([200, 'storage']);
    expect(Buffer.from(await answer.arrayBuffer()).equals(moved.zip)).toBe(true);
    expect((await get(`${proxy.url}${pathOf('mirrored', 'mod')}`)).headers.get('location')).toBe(
      `https://mirror.test${pathOf('mirrored', 'mod')}`,
    );
  });

  it('stops start-up with an error that names the variable and the entry', async () => {
    const cases: Array<[string, unknown, string | RegExp]> = [
      ['not-json.json', '{"mode": ', 'DOWNLOAD_MODE_FILE: '],
      [
        'bad-mode.json',
        {
          modules: [
            { pattern: 'a.test', mode: 'sync' },
            { pattern: 'b.test', mode: 'lazy' },
          ],
        },
        /modules\[1\]\.mode: must be one of sync, async, none, redirect, async_redirect/,
      ],
      [
        'bad-pattern.json',
        { modules: [{ pattern: 'a.test/[x', mode: 'none' }] },
        /modules\[0\]\.pattern: pattern "a\.test\/\[x" is not a valid glob/,
      ],
      [
        'spaces.json',
        { modules: [{ pattern: 'a.test, b.test', mode: 'none' }] },
        /modules\[0\]\.pattern: pattern " b\.test" contains white space/,
      ],
      [
        'no-url.json',
        { modules: [{ pattern: 'a.test', mode: 'redirect' }] },
        /modules\[0\]\.upstream: is required: the mode is redirect/,
      ],
      [
        'default-no-url.json',
        { mode: 'async_redirect' },
        /upstream: is required: the default mode is async_redirect/,
      ],
      [
        'secret-url.json',
        { mode: 'redirect', upstream: 'https://user:hunter2-secret@mirror.test' },
        /upstream: must not carry credentials/,
      ],
      ['unknown-key.json', { mode: 'sync', download: [] }, /\(file\): Unrecognized key/],
      [
        'extra-entry-key.json',
        { modules: [{ pattern: 'a.test', mode: 'none', url: 'x' }] },
        /modules\[0\]: Unrecognized key/,
      ],
    ];
    for (const [name, content, expected] of cases) {
      const file = await writeModeFile(name, content);
      let error: unknown;
      try {
        loadProxyConfig({ env: { DOWNLOAD_MODE_FILE: file } });
      } catch (caught) {
        error = caught;
      }
      expect(error, name).toBeInstanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message, name).toContain('DOWNLOAD_MODE_FILE: ');
      expect(message, name).toMatch(expected);
      expect(message, name).not.toContain('hunter2-secret');
    }
    expect(() => loadProxyConfig({ env: { DOWNLOAD_MODE_FILE: join(dir, 'missing.json') } })).toThrow(
      /DOWNLOAD_MODE_FILE: cannot read .*missing\.json: ENOENT/,
    );
    expect(() => loadProxyConfig({ env: { DOWNLOAD_MODE: 'redirect' } })).toThrow(
      /DOWNLOAD_REDIRECT_URL: is required when DOWNLOAD_MODE=redirect/,
    );
    expect(() => loadProxyConfig({ env: { DOWNLOAD_MODE: 'eventually' } })).toThrow(
      /DOWNLOAD_MODE: must be one of sync, async, none, redirect, async_redirect/,
    );
    expect(() =>
      loadProxyConfig({ env: { DOWNLOAD_MODE: 'redirect', DOWNLOAD_REDIRECT_URL: 'ftp://mirror.test' } }),
    ).toThrow(/DOWNLOAD_REDIRECT_URL: must be an http or https URL/);
  });
});
