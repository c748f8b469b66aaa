import { mkdir } from 'node:fs/promises';
import { Agent } from 'node:http';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeVersion } from '@modproxy/gomod';
import {
  type AppProcess,
  bundleApp,
  createFixtureModules,
  createTempDir,
  exportFixturesAsGoproxy,
  type FixtureModules,
  rawHttpExchange,
  rawRequest,
  removeDir,
  snapshotTree,
  startAppProcess,
  type StaticGoproxy,
  startStaticGoproxy,
} from '@modproxy/testing';
import { testWorkersEnv } from './test-support/test-proxy';

const REQUESTS = 100_000;
const CONCURRENCY = 16;
/** Logged, so a failure can be replayed with the same paths. */
const SEED = Number(process.env['FUZZ_SEED'] ?? Date.now() % 2 ** 31);

const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
const lowerElement = fc.string({ unit: fc.constantFrom(...`${ALNUM}.-_~`), minLength: 1, maxLength: 12 });
/** Any byte node:http sends as it is in a request line (U+0021 to U+00FF). */
const rawChar = fc.integer({ min: 0x21, max: 0xff }).map((code) => String.fromCharCode(code));
const percentByte = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.boolean()).map(([byte, upper]) => {
  const hex = byte.toString(16).padStart(2, '0');
  return `%${upper ? hex.toUpperCase() : hex}`;
});
const badPercent = fc.constantFrom(
  '%',
  '%z',
  '%zz',
  '%4',
  '%%',
  '%g0',
  '%E2%82',
  '%C0%AE',
  '%C0%AF',
  '%252e',
  '%u002e',
);
const bang = fc.constantFrom('!', '!!', '!a', '!z', '!A', '!1', '!.', '!%21', '%21a', '%21');
const dots = fc.constantFrom(
  '.',
  '..',
  '...',
  '%2e',
  '%2e%2e',
  '%2E%2e',
  '.%2e',
  '%2e.',
  '..%2f',
  '..\\',
  '%5c..',
);
const element = fc.oneof(
  { weight: 6, arbitrary: lowerElement },
  {
    weight: 3,
    arbitrary: fc
      .array(fc.oneof(lowerElement, rawChar, percentByte, badPercent, bang), { minLength: 1, maxLength: 6 })
      .map((parts) => parts.join('')),
  },
  { weight: 1, arbitrary: dots },
  { weight: 1, arbitrary: fc.constantFrom('', 'A', 'Upper', '@v', '@latest', 'v2', 'v0', 'gopkg.in') },
  // Very long segments, past every limit.
  { weight: 1, arbitrary: fc.integer({ min: 250, max: 3000 }).map((n) => 'a'.repeat(n)) },
);
const host = fc.oneof(
  fc.constantFrom(
    'example.test',
    'example.com',
    'github.com',
    'golang.org',
    'gopkg.in',
    'localhost',
    '127.0.0.1',
    'a.b',
  ),
  element,
);
const randomModule = fc
  .tuple(host, fc.array(element, { maxLength: 4 }))
  .map(([first, rest]) => [first, ...rest].join('/'));

const triple = fc.tuple(fc.nat(20), fc.nat(20), fc.nat(20)).map(([a, b, c]) => `v${a}.${b}.${c}`);
const hexString = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: min, maxLength: max });
const timestamp = fc
  .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true })
  .map((date) => date.toISOString().replace(/[-:T]/g, '').slice(0, 14));
const anyVersion = fc.oneof(
  triple,
  fc
    .tuple(triple, fc.constantFrom('pre', 'rc.1', 'beta.2', '0.3', 'RC1', 'Alpha', 'x-y'))
    .map(([v, p]) => `${v}-${p}`),
  fc.tuple(triple, fc.constantFrom('meta', 'build.5', 'incompatible')).map(([v, b]) => `${v}+${b}`),
  fc.tuple(fc.integer({ min: 2, max: 9 }), fc.nat(9)).map(([a, b]) => `v${a}.${b}.0+incompatible`),
  fc.tuple(timestamp, hexString(12, 12)).map(([t, h]) => `v0.0.0-${t}-${h}`),
  fc.tuple(triple, timestamp, hexString(12, 12)).map(([v, t, h]) => `${v}-0.${t}-${h}`),
  fc.tuple(triple, timestamp, hexString(12, 12)).map(([v, t, h]) => `${v}-pre.0.${t}-${h}`),
  fc.constantFrom('latest', 'upgrade', 'patch', 'master', 'main', 'HEAD', 'v1', 'v1.2', '>v1.0.0', '<=v2'),
  fc.array(lowerElement, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('/')),
  hexString(7, 40),
  element,
);
/** Sometimes as the go command would escape it, sometimes raw. */
const versionInPath = fc.tuple(anyVersion, fc.boolean()).map(([version, escape]) => {
  if (!escape) return version;
  try {
    return escapeVersion(version);
  } catch {
    return version;
  }
});

function requestPaths(fixtures: FixtureModules): fc.Arbitrary<{ method: string; path: string }> {
  const real = fixtures.all.flatMap((module) =>
    Object.keys(module.byVersion).map((version) => ({
      module: module.escapedPath,
      version: escapeVersion(version),
    })),
  );
  const fixtureModule = fc.constantFrom(...fixtures.all.map((module) => module.escapedPath));
  const module = fc.oneof(
    { weight: 2, arbitrary: fixtureModule },
    {
      weight: 1,
      arbitrary: fixtureModule.map((path) => path.replace(/!([a-z])/g, (_m, c: string) => c.toUpperCase())),
    },
    { weight: 4, arbitrary: randomModule },
  );
  const ext = fc.constantFrom('info', 'mod', 'zip', 'info', 'mod', 'zip', 'ZIP', 'tar', '', 'info.zip');
  const tail = fc.constantFrom('', '', '', '', '?go-get=1', '?x=%00', '#frag', '/', '/..', '%00', '%2f');
  const shaped = fc.oneof(
    { weight: 2, arbitrary: fc.tuple(module, tail).map(([m, t]) => `/${m}/@v/list${t}`) },
    { weight: 2, arbitrary: fc.tuple(module, tail).map(([m, t]) => `/${m}/@latest${t}`) },
    {
      weight: 6,
      arbitrary: fc.tuple(module, versionInPath, ext, tail).map(([m, v, e, t]) => `/${m}/@v/${v}.${e}${t}`),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...real), fc.constantFrom('info', 'mod', 'zip'))
        .map(([r, e]) => `/${r.module}/@v/${r.version}.${e}`),
    },
    { weight: 1, arbitrary: fc.array(element, { maxLength: 8 }).map((parts) => `/${parts.join('/')}`) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom('/healthz', '/readyz', '/metrics', '/'), tail)
        .map(([p, t]) => p + t),
    },
  );
  const prefixed = fc.oneof(
    { weight: 12, arbitrary: shaped },
    { weight: 1, arbitrary: shaped.map((path) => `/${path}`) },
    { weight: 1, arbitrary: fc.tuple(dots, shaped).map(([d, path]) => `/${d}${path}`) },
  );
  const method = fc.oneof(
    { weight: 18, arbitrary: fc.constant('GET') },
    { weight: 2, arbitrary: fc.constant('HEAD') },
    { weight: 1, arbitrary: fc.constantFrom('POST', 'DELETE', 'PUT') },
  );
  return fc.record({ method, path: prefixed });
}

/** Every path below the sandbox but the storage root's contents, directories included. */
async function outsideStorage(sandbox: string): Promise<string[]> {
  return (await snapshotTree(sandbox, { directories: true })).filter(
    (entry) => !entry.startsWith('storage/'),
  );
}

describe('request path fuzzing (the built proxy, disk storage, a static fixture GOPROXY upstream)', () => {
  let fixtures: FixtureModules;
  let sandbox: string;
  let upstream: StaticGoproxy;
  let proxy: AppProcess;
  let url: string;

  beforeAll(async () => {
    const main = await bundleApp('proxy', 'proxy-fuzz');
    fixtures = await createFixtureModules();
    sandbox = await createTempDir('proxy-fuzz-');
    for (const dir of ['storage', 'upstream', 'tmp', 'home', 'cwd']) await mkdir(join(sandbox, dir));
    await exportFixturesAsGoproxy(fixtures, join(sandbox, 'upstream'));
    upstream = await startStaticGoproxy(join(sandbox, 'upstream'));
    proxy = await startAppProcess(main, {
      cwd: join(sandbox, 'cwd'),
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: join(sandbox, 'home'),
        TMPDIR: join(sandbox, 'tmp'),
        PORT: '0',
        STORAGE_DIR: join(sandbox, 'storage'),
        UPSTREAM: upstream.url,
        ...testWorkersEnv(),
        LOG_LEVEL: 'error',
      },
      ready: /export GOPROXY=(\S+)/,
    });
    url = proxy.match[1] ?? '';
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.stop();
    await fixtures?.close();
    if (sandbox) await removeDir(sandbox);
  });

  it('answers request lines carrying any byte (controls, spaces, CR and LF) with a status and a text body', async () => {
    const before = await outsideStorage(sandbox);
    const lines = fc.sample(
      fc.tuple(
        fc.constantFrom('/', '/example.test/', `/${fixtures.hello.escapedPath}/@v/`),
        fc.uint8Array({ minLength: 1, maxLength: 40 }),
        fc.constantFrom('/@v/list', '.info', '/@latest', ''),
      ),
      { numRuns: 2_000, seed: SEED },
    );
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < lines.length) {
        const [head, bytes, tail] = lines[next++]!;
        const line = Buffer.concat([Buffer.from(`GET ${head}`), Buffer.from(bytes), Buffer.from(tail)]);
        const at = JSON.stringify(line.toString('latin1'));
        try {
          const answer = await rawHttpExchange(
            url,
            Buffer.concat([line, Buffer.from(' HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')]),
          );
          const headers = answer.toString('latin1').split('\r\n\r\n')[0] ?? '';
          const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(headers)?.[1]);
          if (!(status >= 200 && status < 500)) failures.push(`${at}: ${JSON.stringify(headers)}`);
          else if (status >= 400 && !/\r\ncontent-type: text\/plain/i.test(headers)) {
            failures.push(`${at}: ${status} without a text/plain body`);
          }
        } catch (error) {
          failures.push(`${at}: ${(error as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    expect(failures, `seed ${SEED}`).toEqual([]);
    expect(proxy.child.exitCode, proxy.stderr()).toBeNull();
    expect(await outsideStorage(sandbox)).toEqual(before);
  });

  it(`answers ${REQUESTS} generated raw request paths without a crash, a 5xx or a write outside the storage root`, async () => {
    const before = await outsideStorage(sandbox);
    const requests = fc.sample(requestPaths(fixtures), { numRuns: REQUESTS, seed: SEED });
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let next = 0;
    const worker = async () => {
      while (next < requests.length) {
        const { method, path } = requests[next++]!;
        const at = `${method} ${JSON.stringify(path).replace(/(.)\1{39,}/g, (run, c: string) => `<${c}×${run.length}>`)}`;
        try {
          const response = await rawRequest(url, path, { method, agent });
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          const type = String(response.headers['content-type'] ?? '');
          if (response.status >= 500) failures.push(`${at}: ${response.status} ${response.body.toString()}`);
          else if (response.status >= 400 && !type.startsWith('text/plain')) {
            failures.push(`${at}: ${response.status} with content-type ${JSON.stringify(type)}`);
          } else if (response.status >= 400 && method !== 'HEAD' && response.body.length === 0) {
            failures.push(`${at}: ${response.status} with an empty body`);
          }
        } catch (error) {
          failures.push(`${at}: ${(error as Error).message}`);
        }
        if (failures.length >= 20) return;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    agent.destroy();

    expect(failures, `seed ${SEED}`).toEqual([]);
    expect(proxy.child.exitCode, proxy.stderr()).toBeNull();
    // The run reached every layer: parse errors, misses upstream, and stored fixture versions.
    expect(statuses.get(400) ?? 0).toBeGreaterThan(1_000);
    expect(statuses.get(404) ?? 0).toBeGreaterThan(1_000);
    expect(statuses.get(200) ?? 0).toBeGreaterThan(1_000);

    expect(await outsideStorage(sandbox)).toEqual(before);
    const allowed = new Set(
      fixtures.all.flatMap((module) =>
        Object.keys(module.byVersion).flatMap((version) =>
          ['info', 'mod', 'zip'].map((part) => `${module.escapedPath}/@v/${escapeVersion(version)}/${part}`),
        ),
      ),
    );
    const stored = await snapshotTree(join(sandbox, 'storage'));
    const strays = stored
      .map((entry) => entry.replace(/ \d+$/, ''))
      .filter((path) => !allowed.has(path) && !path.startsWith('.leases/'));
    expect(strays).toEqual([]);
    expect(await proxy.stop()).toBe(0);
  }, 240_000);
});
