import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapePath } from '@modproxy/gomod';
import { DiskStorage } from '@modproxy/storage';
import {
  bundleApp,
  createTempDir,
  removeDir,
  startAppProcess,
  waitUntil,
  type AppProcess,
} from '@modproxy/testing';

const module = 'example.com/purged/Everywhere';

/** GET on a connection of its own, so the primary hands it to the next worker in turn. */
async function get(url: string, method = 'GET'): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { method, headers: { connection: 'close' } });
  return { status: response.status, body: await response.text() };
}

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

/**
 * The embedded default with WORKERS=2, as the built bundle runs it: each worker keeps its own
 * memory tier, and a purge through the primary's admin port must empty both.
 */
describe('a purge with WORKERS=2 (the built proxy, disk storage)', () => {
  let sandbox: string;
  let proxy: AppProcess;
  let url: string;
  let admin: string;

  beforeAll(async () => {
    const main = await bundleApp('proxy', 'proxy-purge-workers');
    sandbox = await createTempDir('proxy-purge-workers-');
    const storage = await DiskStorage.open({ root: join(sandbox, 'storage') });
    for (const version of ['v1.0.0', 'v1.1.0']) {
      await storage.save({
        module,
        version,
        info: Buffer.from(JSON.stringify({ Version: version, Time: '2024-01-02T03:04:05Z' })),
        mod: Buffer.from(`module ${module}\n`),
        zip: Readable.from([Buffer.from(`zip of ${version}`)], { objectMode: false }),
      });
    }
    await storage.close();
    proxy = await startAppProcess(main, {
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: sandbox,
        TMPDIR: sandbox,
        LOG_LEVEL: 'info',
        PORT: '0',
        WORKERS: '2',
        STORAGE_TYPE: 'disk',
        STORAGE_DIR: join(sandbox, 'storage'),
        DOWNLOAD_MODE: 'none',
        UPSTREAM: 'off',
        ADMIN_PORT: '0',
        ADMIN_ALLOW_UNAUTHENTICATED: 'true',
      },
      ready: /"admin":"(http:\/\/[^"]+)"[\s\S]*export GOPROXY=(\S+)/,
    });
    admin = proxy.match[1] ?? '';
    url = proxy.match[2] ?? '';
  });

  afterAll(async () => {
    await proxy?.stop();
    await removeDir(sandbox);
  });

  const path = (version: string, file: string) => `/${escapePath(module)}/@v/${version}.${file}`;

  it('empties the memory tier of every worker', async () => {
    expect(admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // Each request twice on connections of their own: the primary hands them to the workers in
    // turn, so both workers read (and keep) every file of both versions.
    const entries = async () =>
      metricValue((await get(`${url}/metrics`)).body, 'modproxy_content_cache_entries{tier="memory"}');
    await waitUntil(
      async () => {
        for (const version of ['v1.0.0', 'v1.1.0']) {
          for (const file of ['info', 'mod', 'zip']) {
            for (let i = 0; i < 2; i++) expect((await get(`${url}${path(version, file)}`)).status).toBe(200);
          }
        }
        // Two workers, two versions, three files each.
        return (await entries()) === 12;
      },
      { what: 'both workers hold every file' },
    );

    const purged = await get(`${admin}/modules/${escapePath(module)}/@v/v1.0.0`, 'DELETE');
    expect([purged.status, purged.body]).toEqual([
      200,
      `deleted ${module}@v1.0.0; every replica's content cache drops it\n`,
    ]);
    for (let i = 0; i < 6; i++) {
      for (const file of ['info', 'mod', 'zip']) {
        expect((await get(`${url}${path('v1.0.0', file)}`)).status, `${file} #${i}`).toBe(404);
        expect((await get(`${url}${path('v1.1.0', file)}`)).status, `${file} #${i}`).toBe(200);
      }
    }
    const after = (await get(`${url}/metrics`)).body;
    expect(await entries()).toBe(6);
    expect(metricValue(after, 'modproxy_content_cache_invalidations_total{origin="bus"}')).toBe(2);
  });
});
