import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AppProcess,
  bundleApp,
  createFixtureModules,
  createGoWorkspace,
  createTempDir,
  exportFixturesAsGoproxy,
  type FixtureModule,
  type FixtureModules,
  type GoproxyFileKind,
  type HostileBehaviour,
  type HostileUpstream,
  hugeListVersions,
  parseJsonStream,
  removeDir,
  runGo,
  snapshotTree,
  startAppProcess,
  startHostileUpstream,
} from '@modproxy/testing';
import { testWorkersEnv } from './test-support/test-proxy';

/** Concurrent requests of each kind against each behaviour. */
const CONCURRENCY = 50;
/**
 * Deadlines (a metadata call and a zip's longest silence; a whole fetch): generous where the
 * upstream answers, since two busy cores are slow; short where it stalls, so stalls end soon.
 */
const ANSWERING = { UPSTREAM_TIMEOUT_MS: '30000', FETCH_TIMEOUT_MS: '60000' };
const STALLING = { UPSTREAM_TIMEOUT_MS: '1000', FETCH_TIMEOUT_MS: '4000' };

interface Case {
  behaviour: HostileBehaviour;
  /** Only these kinds of upstream request misbehave (the rest are served correctly). */
  only?: GoproxyFileKind[];
  /** The status every client gets, per kind of request sent (one of them, for a list). */
  expect: Partial<Record<GoproxyFileKind, number | number[]>>;
  /** More configuration of the proxy. @default ANSWERING */
  env?: Record<string, string>;
  /** Whether Retry-After reaches the client on the zip's answer. */
  retryAfter?: boolean;
}

const all = (status: number): Case['expect'] => ({
  info: status,
  mod: status,
  zip: status,
  list: status,
  latest: status,
});
const fetchOnly = (status: number): Case['expect'] => ({
  info: status,
  mod: status,
  zip: status,
  list: 200,
  latest: 200,
});

/**
 * Only the zip misbehaves: an .info and a .mod are answered from upstream alone before the zip
 * (EarlyFiles), so they are served; the zip's fetch fails.
 */
const zipOnly = (status: number): Case['expect'] => ({ ...fetchOnly(200), zip: status });

const CASES: Case[] = [
  { behaviour: 'http10-close', expect: all(200) },
  { behaviour: 'connection-close', expect: all(200) },
  { behaviour: 'gzip', expect: all(200) },
  { behaviour: 'oversized-404', expect: all(404) },
  { behaviour: 'status-404', expect: all(404) },
  // A not-found answer the list/latest cache remembers is a 404, whatever upstream said: both
  // tell the go command the same (try the next proxy).
  { behaviour: 'status-410', expect: { ...all(410), list: [410, 404], latest: [410, 404] } },
  { behaviour: 'oversized-500', expect: all(502) },
  { behaviour: 'status-500', expect: all(502) },
  { behaviour: 'status-503', expect: all(502), retryAfter: true },
  { behaviour: 'status-429', expect: all(502), retryAfter: true },
  { behaviour: 'short-body', expect: all(502) },
  { behaviour: 'short-body', only: ['zip'], expect: zipOnly(502) },
  { behaviour: 'redirect-loop', expect: all(502) },
  // The .mod alone is fine, and served; the .info, and the fetch that needs it, are not.
  { behaviour: 'html-info', expect: { ...fetchOnly(502), mod: 200 } },
  { behaviour: 'stall-body', expect: all(504), env: STALLING },
  // The zip falls silent while list and latest answer: the silence limit (UPSTREAM_TIMEOUT_MS)
  // ends it long before the fetch's deadline.
  {
    behaviour: 'stall-body',
    only: ['zip'],
    expect: zipOnly(504),
    env: { UPSTREAM_TIMEOUT_MS: '5000', FETCH_TIMEOUT_MS: '600000' },
  },
  { behaviour: 'stall-headers', expect: all(504), env: STALLING },
  // Versions fetched alongside would join the list: only the list is asked for.
  { behaviour: 'huge-list', expect: { list: 200 } },
];

/** What a client may never read in an error body: the upstream's address or its pages. */
const LEAKS = ['127.0.0.1', 'hostile', 'an error page', 'rate limited', 'maintenance', 'Sign in', 'says'];

let fixtures: FixtureModules;
let sandbox: string;
let tree: string;
let hostile: HostileUpstream;
let main: string;

/** Every version of every module in the tree, and the modules that have a version list. */
let versions: Array<{ module: FixtureModule; version: string }>;
let listed: FixtureModule[];

beforeAll(async () => {
  main = await bundleApp('proxy', 'proxy-hostile-upstream');
  fixtures = await createFixtureModules();
  sandbox = await createTempDir('proxy-hostile-');
  tree = join(sandbox, 'upstream');
  await exportFixturesAsGoproxy(fixtures, tree);
  hostile = await startHostileUpstream({ dir: tree, oversizedBytes: 32 * 1024 * 1024, trickleMs: 100 });
  versions = fixtures.all.flatMap((module) =>
    Object.keys(module.byVersion).map((version) => ({ module, version })),
  );
  listed = fixtures.all.filter((module) => module.versions.length > 0);
});

afterAll(async () => {
  await hostile?.close();
  await fixtures?.close();
  if (sandbox) await removeDir(sandbox);
});

/** The built proxy, as its own process, on its own storage, fetching from `upstream`. */
async function startProxy(name: string, upstream: string, env: Record<string, string> = ANSWERING) {
  const dir = await createTempDir(`${name}-`, sandbox);
  for (const sub of ['storage', 'tmp', 'home']) await mkdir(join(dir, sub));
  const proxy = await startAppProcess(main, {
    cwd: dir,
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: join(dir, 'home'),
      TMPDIR: join(dir, 'tmp'),
      PORT: '0',
      STORAGE_DIR: join(dir, 'storage'),
      UPSTREAM: upstream,
      ...testWorkersEnv(),
      LOG_LEVEL: 'error',
      ...env,
    },
    ready: /export GOPROXY=(\S+)/,
  });
  return { proxy, url: proxy.match[1] ?? '', storage: join(dir, 'storage'), tmp: join(dir, 'tmp') };
}

function pathOf(kind: GoproxyFileKind, i: number): { path: string; file: string } {
  if (kind === 'list' || kind === 'latest') {
    const module = listed[i % listed.length]!;
    const path = kind === 'list' ? `/${module.escapedPath}/@v/list` : `/${module.escapedPath}/@latest`;
    return {
      path,
      file: kind === 'list' ? `${module.escapedPath}/@v/list` : `${module.escapedPath}/@latest`,
    };
  }
  const { module, version } = versions[i % versions.length]!;
  const file = `${module.escapedPath}/@v/${version}.${kind}`;
  return { path: `/${file}`, file };
}

interface Answer {
  kind: GoproxyFileKind;
  path: string;
  file: string;
  status: number;
  type: string;
  retryAfter: string | null;
  body: Buffer;
}

async function ask(url: string, kind: GoproxyFileKind, i: number): Promise<Answer> {
  const { path, file } = pathOf(kind, i);
  const response = await fetch(`${url}${path}`);
  return {
    kind,
    path,
    file,
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    retryAfter: response.headers.get('retry-after'),
    body: Buffer.from(await response.arrayBuffer()),
  };
}

/** Stored versions: a complete version directory holds info, mod and zip. */
function storedVersions(snapshot: string[]): string[] {
  return snapshot.filter((entry) => /\/@v\/[^/]+\/(info|mod|zip) \d+$/.test(entry));
}

async function expectRightBytes(answer: Answer): Promise<void> {
  const expected = await readFile(join(tree, answer.file));
  if (answer.kind === 'latest') {
    expect(JSON.parse(answer.body.toString()).Version, answer.path).toBe(
      JSON.parse(expected.toString()).Version,
    );
  } else if (answer.kind === 'list') {
    expect(answer.body.toString(), answer.path).toBe(expected.toString());
  } else {
    expect(answer.body.equals(expected), `${answer.path}: the bytes in the tree`).toBe(true);
  }
}

describe('the proxy process behind a hostile upstream', () => {
  it.each(CASES)('$behaviour $only: every client gets its status, the process stays up', async (testCase) => {
    const { behaviour, only = [] } = testCase;
    const before = hostile.requestsWith(behaviour);
    const { proxy, url, storage, tmp } = await startProxy(
      behaviour,
      hostile.urlFor(behaviour, only),
      testCase.env,
    );
    try {
      const kinds = Object.keys(testCase.expect) as GoproxyFileKind[];
      const answers = await Promise.all(
        kinds.flatMap((kind) => Array.from({ length: CONCURRENCY }, (_, i) => ask(url, kind, i))),
      );
      expect(hostile.requestsWith(behaviour)).toBeGreaterThan(before);

      for (const answer of answers) {
        const expected = [testCase.expect[answer.kind]].flat();
        expect(expected, `${answer.path}: ${answer.body.toString().slice(0, 200)}`).toContain(answer.status);
        if (answer.status === 200) {
          if (behaviour === 'huge-list') {
            expect(answer.body.toString()).toBe(
              hugeListVersions(100_000)
                .map((v) => `${v}\n`)
                .join(''),
            );
          } else await expectRightBytes(answer);
          continue;
        }
        expect(answer.type, answer.path).toMatch(/^text\/plain/);
        const text = answer.body.toString();
        expect(text.length, answer.path).toBeGreaterThan(0);
        for (const leak of LEAKS) expect(text, answer.path).not.toContain(leak);
        if (testCase.retryAfter && answer.kind === 'zip') {
          expect(Number(answer.retryAfter), answer.path).toBeGreaterThanOrEqual(110);
        }
      }

      // Still up, still serving.
      expect(proxy.child.exitCode).toBeNull();
      expect(proxy.child.signalCode).toBeNull();
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      // Nothing is stored from an upstream that failed; what a sound one served is.
      const stored = storedVersions(await snapshotTree(storage));
      if (testCase.expect.zip === 200) expect(stored.length).toBeGreaterThan(0);
      else expect(stored).toEqual([]);
      // No fetch left a temporary zip behind, however it ended.
      expect((await readdir(tmp)).filter((entry) => entry.startsWith('goproxy-fetch-'))).toEqual([]);
    } finally {
      expect(await proxy.stop()).toBe(0);
    }
  });
});

describe('the go command through the proxy, upstream an HTTP/1.0 server that closes after every response', () => {
  let running: { proxy: AppProcess; url: string };
  const cleanup: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    running = await startProxy('go-http10', hostile.urlFor('http10-close'));
  });

  afterAll(async () => {
    expect(await running?.proxy.stop()).toBe(0);
    for (const step of cleanup) await step();
  });

  async function clientEnv(): Promise<Record<string, string>> {
    const gopath = await createTempDir('client-', sandbox);
    // The fixtures' hermetic go environment without the git config that reaches the
    // repositories: modules come only through the proxy.
    const { GIT_CONFIG_GLOBAL: _unreachable, ...env } = fixtures.env;
    return { ...env, GOPROXY: running.url, GOPATH: gopath, GOMODCACHE: join(gopath, 'pkg', 'mod') };
  }

  it('downloads every fixture module with the same hashes as a direct download', async () => {
    const queries = versions.map(({ module, version }) => `${module.path}@${version}`);
    const sums = (stdout: string) =>
      (parseJsonStream(stdout) as Array<Record<string, unknown>>).map(
        ({ Path, Version, Sum, GoModSum, Error }) => ({
          Path,
          Version,
          Sum,
          GoModSum,
          Error,
        }),
      );
    const direct = await runGo(['mod', 'download', '-json', ...queries], {
      cwd: fixtures.root,
      env: fixtures.env,
    });
    expect(direct.exitCode, direct.stderr).toBe(0);
    const before = hostile.requestsWith('http10-close');
    const viaProxy = await runGo(['mod', 'download', '-json', ...queries], {
      cwd: fixtures.root,
      env: await clientEnv(),
    });
    expect(viaProxy.exitCode, viaProxy.stderr).toBe(0);
    expect(sums(viaProxy.stdout)).toEqual(sums(direct.stdout));
    expect(hostile.requestsWith('http10-close')).toBeGreaterThan(before);
  });

  it('builds and runs a program importing every kind of fixture module', async () => {
    const modules = [
      fixtures.hello,
      fixtures.majorV2,
      fixtures.mixedCase,
      fixtures.legacy,
      fixtures.nested,
      fixtures.nestedSub,
      fixtures.untagged,
    ];
    const env = await clientEnv();
    const workspace = await createGoWorkspace({
      env,
      imports: modules.map(({ importPath, func }) => ({ importPath, func })),
      parentDir: sandbox,
    });
    cleanup.push(() => workspace.remove());
    const get = await workspace.go(['get', ...modules.map((module) => `${module.path}@latest`)]);
    expect(get.exitCode, get.stderr).toBe(0);
    const build = await workspace.go(['build', '-o', 'program', '.']);
    expect(build.exitCode, build.stderr).toBe(0);
    const run = await runGo(['run', '.'], { cwd: workspace.dir, env });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout.trim().split('\n')).toEqual(
      modules.map((module) => module.byVersion[module.latest]?.returns),
    );
  });
});
