import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createQueueRedis, FetchQueue, fetchJobId } from '@modproxy/queue';
import {
  createFixtureModules,
  createTempDir,
  exportFixturesAsGoproxy,
  parseJsonStream,
  removeDir,
  runCommand,
  runGo,
  startStaticGoproxy,
  waitUntil,
  writeLargeModule,
  type FixtureModules,
  type LargeModule,
  type StaticGoproxy,
} from '@modproxy/testing';
import { startQueuedShape, type QueuedShape } from './queued-shape';

const root = join(__dirname, '..', '..', '..');
const REPLICAS = 3;
const CLIENTS = 100;

interface Outcome {
  status?: number;
  sha256?: string;
  bytes?: number;
  error?: string;
}

/** One GET on its own connection, as a separate client would make it. */
function download(url: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, sha256: hash.digest('hex'), bytes }));
      res.on('error', (error) => resolve({ status: res.statusCode ?? 0, error: error.message }));
    });
    req.on('error', (error) => resolve({ error: error.message }));
    req.end();
  });
}

function tally(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of outcomes) {
    const key = outcome.error ? `no response: ${outcome.error}` : String(outcome.status);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** The warm command as a user runs it (`npm run warm -- …`), bundled and run as a process. */
function warm(args: string[], env: Record<string, string> = {}, signal?: AbortSignal) {
  return runCommand(
    process.execPath,
    [join(root, 'scripts', 'run-ts.mjs'), join(root, 'scripts', 'warm.ts'), ...args],
    {
      cwd: root,
      env: { PATH: process.env['PATH'] ?? '', ...env },
      ...(signal ? { signal } : {}),
    },
  );
}

/**
 * The production shape with the fetch queue, as processes: storage service on FerretDB, lathens
 * on Redis, crathens' fetch workers, three proxy replicas with QUEUE_REDIS_URL; the upstream is
 * a fixture GOPROXY that counts requests (exported fixture git repositories and generated
 * modules).
 */
describe('misses through the fetch queue in the production shape', () => {
  let dir: string;
  let fixtures: FixtureModules;
  let upstream: StaticGoproxy;
  let shape: QueuedShape;
  let cold: LargeModule;
  const warmModules: LargeModule[] = [];

  beforeAll(async () => {
    dir = await createTempDir('queued-e2e-');
    fixtures = await createFixtureModules();
    const goproxyDir = join(dir, 'goproxy');
    await exportFixturesAsGoproxy(fixtures, goproxyDir, { modules: [fixtures.hello, fixtures.major] });
    cold = await writeLargeModule(goproxyDir, {
      module: 'example.test/burst/cold',
      zipBytes: 4 * 1024 * 1024,
    });
    for (let i = 0; i < 48; i++) {
      const name = String(i).padStart(2, '0');
      warmModules.push(
        await writeLargeModule(goproxyDir, { module: `example.test/warm/m${name}`, zipBytes: 2048 }),
      );
    }
    upstream = await startStaticGoproxy(goproxyDir);
    shape = await startQueuedShape({
      mongoUri: inject('mongoUri'),
      redisUrl: inject('redisUrl'),
      upstream: upstream.url,
      replicas: REPLICAS,
      // The fixture GOPROXY is one host; let crathens ask it briskly.
      crathensEnv: { HOST_CONCURRENCY: '8', HOST_RATE_PER_SECOND: '200' },
    });
  });

  afterAll(async () => {
    await shape?.stop();
    await upstream?.stop();
    await fixtures?.close();
    if (dir) await removeDir(dir);
  });

  it('answers 100 concurrent cold requests over 3 replicas with one upstream fetch and identical, correct bytes', async () => {
    const outcomes = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) =>
        download(`${shape.proxies[i % REPLICAS] ?? ''}${cold.zipUrlPath}`),
      ),
    );
    expect(tally(outcomes), shape.logs().slice(-20_000)).toEqual({ '200': CLIENTS });
    for (const outcome of outcomes)
      expect(outcome).toMatchObject({ sha256: cold.zipSha256, bytes: cold.zip.length });
    // One job for every replica's miss: the zip, .info and .mod were each asked for once.
    expect(upstream.requestCount(cold.zipUrlPath)).toBe(1);
    expect(upstream.requestCount(cold.zipUrlPath.replace(/\.zip$/, '.mod'))).toBe(1);
    expect(await shape.inspector.exists(cold.module, cold.version)).toBe(true);
  }, 600_000);

  /** A module cache of its own (the fixtures' already holds every version, from their export). */
  const freshModuleCache = (name: string) => ({
    GOPATH: join(dir, `gopath-${name}`),
    GOMODCACHE: join(dir, `gopath-${name}`, 'pkg', 'mod'),
    GOFLAGS: '-modcacherw',
  });

  it('async: answers 404 at once, stores the version shortly after, and the go command falls through on its first try', async () => {
    const asyncProxy = await shape.startProxy({ DOWNLOAD_MODE: 'async' });
    const hello = fixtures.hello;
    const info = await fetch(`${asyncProxy}/${hello.escapedPath}/@v/v1.0.0.info`);
    expect([info.status, await info.text()]).toEqual([
      404,
      `${hello.path}@v1.0.0 is being fetched; try again shortly\n`,
    ]);
    await waitUntil(() => shape.inspector.exists(hello.path, 'v1.0.0'), { what: 'crathens stored v1.0.0' });
    expect((await fetch(`${asyncProxy}/${hello.escapedPath}/@v/v1.0.0.info`)).status).toBe(200);

    const result = await runGo(['mod', 'download', '-json', `${hello.path}@v1.1.0`], {
      cwd: fixtures.root,
      env: { ...fixtures.env, ...freshModuleCache('async'), GOPROXY: `${asyncProxy},${upstream.url}` },
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const [downloaded] = parseJsonStream(result.stdout) as Array<{
      Version?: string;
      Error?: string;
      Zip?: string;
    }>;
    expect(downloaded).toMatchObject({ Version: 'v1.1.0' });
    expect(downloaded?.Error).toBeUndefined();
    // The go command got the zip from the next GOPROXY entry; crathens stored it for next time.
    expect(upstream.requestCount(`/${hello.escapedPath}/@v/v1.1.0.zip`)).toBeGreaterThanOrEqual(1);
    await waitUntil(() => shape.inspector.exists(hello.path, 'v1.1.0'), { what: 'crathens stored v1.1.0' });
  }, 300_000);

  it('redirect: the go command follows the 302 to the configured upstream, and nothing is fetched', async () => {
    const redirecting = await shape.startProxy({
      DOWNLOAD_MODE: 'redirect',
      DOWNLOAD_REDIRECT_URL: upstream.url,
    });
    const major = fixtures.major;
    const answer = await fetch(`${redirecting}/${major.escapedPath}/@v/v1.0.0.zip`, { redirect: 'manual' });
    expect([answer.status, answer.headers.get('location')]).toEqual([
      302,
      `${upstream.url}/${major.escapedPath}/@v/v1.0.0.zip`,
    ]);
    const result = await runGo(['mod', 'download', '-json', `${major.path}@v1.0.0`], {
      cwd: fixtures.root,
      env: { ...fixtures.env, ...freshModuleCache('redirect'), GOPROXY: redirecting },
    });
    expect(result.exitCode, result.stderr).toBe(0);
    // The go command got it where it was sent, and this proxy stored nothing.
    expect(upstream.requestCount(`/${major.escapedPath}/@v/v1.0.0.zip`)).toBe(1);
    expect(await shape.inspector.exists(major.path, 'v1.0.0')).toBe(false);
  }, 300_000);

  it('download-mode file: first match wins, a denied pattern is never fetched, and a bad entry stops start-up naming the variable', async () => {
    const file = join(dir, 'modes.json');
    await writeFile(
      file,
      JSON.stringify({
        mode: 'sync',
        modules: [
          { pattern: 'example.test/warm/m47', mode: 'none' },
          { pattern: 'example.test/warm', mode: 'redirect', upstream: upstream.url },
        ],
      }),
    );
    const moded = await shape.startProxy({ DOWNLOAD_MODE_FILE: file });
    const denied = warmModules[47] as LargeModule;
    const moved = warmModules[46] as LargeModule;
    const deniedAnswer = await fetch(`${moded}${denied.zipUrlPath}`, { redirect: 'manual' });
    expect([deniedAnswer.status, await deniedAnswer.text()]).toEqual([
      404,
      `${denied.module}@v1.0.0 is not stored\n`,
    ]);
    const movedAnswer = await fetch(`${moded}${moved.zipUrlPath}`, { redirect: 'manual' });
    expect([movedAnswer.status, movedAnswer.headers.get('location')]).toEqual([
      302,
      `${upstream.url}${moved.zipUrlPath}`,
    ]);
    // Matched by no entry: the default, sync through the queue.
    const synced = await download(`${moded}/${fixtures.hello.escapedPath}/@v/v1.2.0-pre.zip`);
    expect(synced.status).toBe(200);
    expect(upstream.requestCount(denied.zipUrlPath)).toBe(0);

    const bad = join(dir, 'bad-modes.json');
    await writeFile(bad, JSON.stringify({ modules: [{ pattern: 'example.test/x', mode: 'eventually' }] }));
    await expect(shape.startProxy({ DOWNLOAD_MODE_FILE: bad })).rejects.toThrow(
      /exited with 2 before it was ready[\s\S]*DOWNLOAD_MODE_FILE: .*modules\[0\]\.mode: must be one of sync, async, none, redirect, async_redirect/,
    );
  }, 300_000);

  it('warm: stores every entry of a go.sum with dozens of versions and reports fetched and already there', async () => {
    const entries = warmModules.slice(0, 36);
    // Six are stored before the warm run.
    for (const module of entries.slice(0, 6))
      expect((await download(`${shape.proxies[0] ?? ''}${module.zipUrlPath}`)).status).toBe(200);
    const goSum = join(dir, 'go.sum');
    await writeFile(
      goSum,
      entries
        .flatMap((m) => [`${m.module} v1.0.0 h1:unchecked=`, `${m.module} v1.0.0/go.mod h1:unchecked=`])
        .join('\n'),
    );
    const run = await warm([goSum, '--proxy', shape.proxies[1] ?? '', '--concurrency', '8']);
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain(
      `warm: 36 module versions from ${goSum} (go.sum), through ${shape.proxies[1] ?? ''}\n`,
    );
    expect(run.stdout).toContain(
      '  fetched:           30\n  already there:      6\n  failed:             0\n',
    );
    expect(run.stdout).toMatch(/\[36\/36\] (fetched|already there) example\.test\/warm\/m\d\d@v1\.0\.0\n/);
    for (const module of entries)
      expect(await shape.inspector.exists(module.module, 'v1.0.0'), module.module).toBe(true);
  }, 300_000);

  it('warm: exits non-zero and gives the reason of every failure', async () => {
    const list = join(dir, 'with-failures.txt');
    await writeFile(
      list,
      [
        'example.test/warm/m00@v1.0.0',
        'example.test/warm/missing@v1.0.0',
        `${fixtures.hello.path}@v1.99.0`,
        'example.test/warm/m01@latest',
      ].join('\n'),
    );
    const run = await warm([list, '--proxy', shape.proxies[2] ?? '']);
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(1);
    expect(run.stdout).toContain(
      '  fetched:            0\n  already there:      1\n  failed:             3\n',
    );
    expect(run.stdout).toMatch(/ {2}example\.test\/warm\/missing@v1\.0\.0: \.mod: 404 .*not found/);
    expect(run.stdout).toMatch(
      new RegExp(` {2}${fixtures.hello.path.replace(/\./g, '\\.')}@v1\\.99\\.0: \\.mod: 404 `),
    );
    expect(run.stdout).toContain(
      '  line 4 "example.test/warm/m01@latest": invalid version "latest": not a canonical semantic version\n',
    );
  }, 300_000);

  it('warm --queue: queues every entry for crathens and waits until each is stored', async () => {
    const entries = warmModules.slice(36, 46);
    const list = join(dir, 'queued.txt');
    await writeFile(list, `${entries.map((m) => `${m.module}@v1.0.0`).join('\n')}\n`);
    // Each entry's deadline well inside the test's (warm's default, 300 s, is the test's own):
    // a job crathens does not finish is then reported by warm itself, with its reason, beside
    // where every job stands and what the processes logged, instead of the test timing out with
    // nothing to show (10 entries, 8 at a time: two deadlines at most). The run as a whole is
    // bounded too, for a warm that would not exit.
    const run = await warm(
      [list, '--queue', '--timeout-ms', '60000'],
      { QUEUE_REDIS_URL: inject('redisUrl'), QUEUE_PREFIX: shape.prefix },
      AbortSignal.timeout(180_000),
    ).catch((error: unknown) => ({
      exitCode: null,
      stdout: '',
      stderr: `warm did not exit: ${String(error)}`,
    }));
    if (run.exitCode !== 0) {
      const connection = createQueueRedis(inject('redisUrl'));
      const jobs = new FetchQueue({ connection, prefix: shape.prefix });
      try {
        const states = await Promise.all(
          entries.map(async (m) => {
            const job = await jobs.queue.getJob(fetchJobId(m.module, 'v1.0.0'));
            return `${m.module}: ${String(await job?.getState())}, attempts ${String(job?.attemptsMade)}, ${job?.failedReason ?? ''}`;
          }),
        );
        expect(
          run.exitCode,
          `${run.stdout}\n${run.stderr}\n${states.join('\n')}\n${shape.logs().slice(-20_000)}`,
        ).toBe(0);
      } finally {
        await jobs.close();
        connection.disconnect();
      }
    }
    expect(run.stdout).toContain(
      '  fetched:           10\n  already there:      0\n  failed:             0\n',
    );
    for (const module of entries)
      expect(await shape.inspector.exists(module.module, 'v1.0.0'), module.module).toBe(true);
  }, 300_000);

  it('feeds: /index lists what was stored in the order it was stored, /catalog by module, on every replica', async () => {
    const stored: string[] = [];
    let pageToken: string | undefined;
    do {
      const page = await shape.inspector.catalog({ pageSize: 1000, ...(pageToken ? { pageToken } : {}) });
      stored.push(...page.entries.map((e) => `${e.module}@${e.version}`));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(stored.length).toBeGreaterThan(40);
    for (const proxy of shape.proxies) {
      const response = await fetch(`${proxy}/index`);
      expect(response.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
      const lines = (await response.text())
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, string>);
      expect(lines.map((l) => `${l['Path']}@${l['Version']}`).sort()).toEqual([...stored].sort());
      const times = lines.map((l) => Date.parse(l['Timestamp'] ?? ''));
      expect(times.every((t, i) => i === 0 || t >= (times[i - 1] ?? 0))).toBe(true);
      // The cold burst was stored before anything the warm runs stored.
      const at = (key: string) => lines.findIndex((l) => `${l['Path']}@${l['Version']}` === key);
      expect(at(`${cold.module}@v1.0.0`)).toBeLessThan(at('example.test/warm/m10@v1.0.0'));
      expect(at('example.test/warm/m10@v1.0.0')).toBeLessThan(at('example.test/warm/m40@v1.0.0'));
      // Paging by the last Timestamp repeats that entry and goes on from it.
      const half = lines[20];
      const rest = (
        await (
          await fetch(`${proxy}/index?since=${encodeURIComponent(half?.['Timestamp'] ?? '')}&limit=5`)
        ).text()
      )
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, string>);
      expect(rest.map((l) => l['Timestamp'])).toEqual(
        lines
          .filter((l) => (l['Timestamp'] ?? '') >= (half?.['Timestamp'] ?? ''))
          .slice(0, 5)
          .map((l) => l['Timestamp']),
      );

      const catalog: string[] = [];
      let next: string | undefined;
      do {
        const page = (await (
          await fetch(`${proxy}/catalog?pagesize=7${next ? `&token=${next}` : ''}`)
        ).json()) as {
          modules: Array<{ module: string; version: string }>;
          next?: string;
        };
        catalog.push(...page.modules.map((m) => `${m.module}@${m.version}`));
        next = page.next;
      } while (next);
      expect(catalog).toEqual(stored);
    }
  }, 120_000);

  it('fetched every version it stored from upstream exactly once, whoever asked and however', () => {
    const zips = Object.entries(upstream.requests()).filter(
      ([path]) => path.endsWith('.zip') && (path.includes('/warm/') || path.includes('/burst/')),
    );
    expect(zips.length).toBeGreaterThan(40);
    expect(zips.filter(([, count]) => count !== 1)).toEqual([]);
  });
});
