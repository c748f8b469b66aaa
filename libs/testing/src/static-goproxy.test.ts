import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportFixturesAsGoproxy, parseJsonStream } from './export-fixtures';
import { createFixtureModules, type FixtureModules } from './fixture-modules';
import { runGo } from './go-env';
import { startStaticGoproxy, type StaticGoproxy } from './static-goproxy';
import { createTempDir, removeDir } from './temp-dir';
import { waitUntil } from './wait-until';

interface DownloadedModule {
  Path: string;
  Version: string;
  Sum?: string;
  GoModSum?: string;
  Error?: string;
}

async function download(
  fixtures: FixtureModules,
  env: Record<string, string>,
  queries: string[],
): Promise<DownloadedModule[]> {
  const result = await runGo(['mod', 'download', '-json', ...queries], { cwd: fixtures.root, env });
  return parseJsonStream(result.stdout) as DownloadedModule[];
}

describe('startStaticGoproxy over exported fixtures', () => {
  let fixtures: FixtureModules;
  let proxyDir: string;
  let proxy: StaticGoproxy;
  let written: string[];

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    proxyDir = await createTempDir('modproxy-static-');
    written = await exportFixturesAsGoproxy(fixtures, proxyDir);
    proxy = await startStaticGoproxy(proxyDir, { slowDelayMs: 300 });
  });

  afterAll(async () => {
    await proxy?.stop();
    await fixtures?.close();
    if (proxyDir) await removeDir(proxyDir);
  });

  /** The fixture env pointed at the static proxy, with a module cache of its own. */
  async function proxyEnv(): Promise<Record<string, string>> {
    const gopath = await createTempDir('gopath-', fixtures.root);
    return { ...fixtures.env, GOPROXY: proxy.url, GOPATH: gopath, GOMODCACHE: join(gopath, 'pkg', 'mod') };
  }

  it('writes the GOPROXY layout with escaped paths, list and @latest', async () => {
    expect(written).toContain(join('example.test/!mixed!case.git', '@v', 'v1.1.0.zip'));
    expect(written).toContain(join('example.test/legacy.git', '@v', 'v3.0.0+incompatible.mod'));
    expect(await readFile(join(proxyDir, 'example.test/hello.git/@v/list'), 'utf8')).toBe(
      'v1.0.0\nv1.1.0\nv1.2.0-pre\nv1.10.0\n',
    );
    expect(await readFile(join(proxyDir, 'example.test/untagged.git/@v/list'), 'utf8')).toBe('');
    const latest = JSON.parse(
      await readFile(join(proxyDir, 'example.test/untagged.git/@latest'), 'utf8'),
    ) as { Version: string };
    expect(latest.Version).toBe(fixtures.untagged.latest);
  });

  it('serves the go command the same modules, byte for byte, as direct mode', async () => {
    const queries = fixtures.all.flatMap((module) =>
      Object.keys(module.byVersion).map((version) => `${module.path}@${version}`),
    );
    const direct = await download(fixtures, fixtures.env, queries);
    proxy.resetCounters();
    const proxied = await download(fixtures, await proxyEnv(), queries);
    expect(proxied.filter((module) => module.Error)).toEqual([]);
    expect(proxied.map((module) => [module.Path, module.Version, module.Sum, module.GoModSum])).toEqual(
      direct.map((module) => [module.Path, module.Version, module.Sum, module.GoModSum]),
    );
    expect(proxy.requestCount('/example.test/!mixed!case.git/@v/v1.1.0.zip')).toBe(1);
    expect(proxy.totalRequests).toBeGreaterThanOrEqual(queries.length * 2);
  });

  it('answers list and latest queries for the go command', async () => {
    const result = await runGo(
      [
        'list',
        '-m',
        '-json',
        '-versions',
        `${fixtures.hello.path}@latest`,
        `${fixtures.untagged.path}@latest`,
      ],
      {
        cwd: fixtures.root,
        env: await proxyEnv(),
      },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    const listed = parseJsonStream(result.stdout) as Array<{ Version: string; Versions?: string[] }>;
    expect(listed.map((module) => [module.Version, module.Versions ?? []])).toEqual([
      [fixtures.hello.latest, fixtures.hello.versions],
      [fixtures.untagged.latest, []],
    ]);
    expect(proxy.requestCount('/example.test/untagged.git/@latest')).toBeGreaterThanOrEqual(1);
  });

  it('fails on demand and recovers on the same port', async () => {
    const listUrl = `${proxy.url}/example.test/hello.git/@v/list`;
    const port = proxy.port;
    try {
      for (const status of ['500', '404', '410'] as const) {
        await proxy.setMode(status);
        expect((await fetch(listUrl)).status).toBe(Number(status));
      }
      await proxy.setMode('down');
      await expect(fetch(listUrl)).rejects.toThrow();
      const failed = await download(fixtures, await proxyEnv(), [`${fixtures.hello.path}@v1.0.0`]);
      expect(failed[0]?.Error).toMatch(/connection refused|connect/);

      await proxy.setMode('ok');
      expect(proxy.port).toBe(port);
      const response = await fetch(listUrl);
      expect(response.status).toBe(200);
      expect(await response.text()).toBe(fixtures.hello.versions.map((version) => `${version}\n`).join(''));
      expect((await fetch(`${proxy.url}/example.test/hello.git/@v/v9.9.9.info`)).status).toBe(404);
      expect((await fetch(`${proxy.url}/..%2f..%2fetc/passwd`)).status).toBe(404);
    } finally {
      await proxy.setMode('ok');
    }
  });

  it('answers late in slow mode', async () => {
    const listUrl = `${proxy.url}/example.test/hello.git/@v/list`;
    try {
      await proxy.setMode('slow');
      await expect(fetch(listUrl, { signal: AbortSignal.timeout(50) })).rejects.toThrow();
      const started = Date.now();
      const response = await fetch(listUrl);
      expect(response.status).toBe(200);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    } finally {
      await proxy.setMode('ok');
    }
  });

  it('holds requests in hold mode until released, then serves them', async () => {
    const listUrl = `${proxy.url}/example.test/hello.git/@v/list`;
    try {
      await proxy.setMode('hold');
      let answered = false;
      const held = Promise.all(
        [1, 2].map(async () => {
          const response = await fetch(listUrl);
          answered = true;
          return { status: response.status, body: await response.text() };
        }),
      );
      await waitUntil(() => proxy.heldRequests === 2, { what: 'both requests are held' });
      expect(answered).toBe(false);
      proxy.releaseHeld();
      const body = fixtures.hello.versions.map((version) => `${version}\n`).join('');
      expect(await held).toEqual([
        { status: 200, body },
        { status: 200, body },
      ]);
      expect(proxy.heldRequests).toBe(0);

      // Leaving the mode serves what is still held.
      const late = fetch(listUrl);
      await waitUntil(() => proxy.heldRequests === 1, { what: 'the late request is held' });
      await proxy.setMode('ok');
      expect((await late).status).toBe(200);
    } finally {
      await proxy.setMode('ok');
    }
  });
});
