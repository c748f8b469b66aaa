import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isModuleError, type ErrorKind } from '@modproxy/errors';
import {
  createTempDir,
  type HostileBehaviour,
  type HostileUpstream,
  hugeListVersions,
  removeDir,
  startHostileUpstream,
  waitUntil,
} from '@modproxy/testing';
import { GoproxyUpstream, type GoproxyUpstreamOptions } from './goproxy-upstream';
import { UpstreamHttpClient } from './upstream-http-client';

const MODULE = 'example.com/hostile';
const VERSIONS = ['v1.0.0', 'v1.1.0'];
/** A zip of zeros that gzip shrinks to almost nothing: a decompression bomb for maxZipBytes. */
const BOMB_VERSION = 'v1.2.0';
const CONCURRENCY = 50;

let treeDir: string;
let tempDir: string;
let hostile: HostileUpstream;
const zips = new Map<string, Buffer>();
const upstreams: GoproxyUpstream[] = [];

function upstream(
  behaviour: HostileBehaviour,
  options: Partial<GoproxyUpstreamOptions> = {},
): GoproxyUpstream {
  const created = new GoproxyUpstream({
    url: hostile.urlFor(behaviour),
    tempDir,
    timeoutMs: 2_000,
    ...options,
  });
  upstreams.push(created);
  return created;
}

interface Outcome {
  kind: ErrorKind | 'ok';
  message: string;
  retryAfterSeconds?: number;
}

async function outcome(run: () => Promise<unknown>): Promise<Outcome> {
  try {
    await run();
    return { kind: 'ok', message: '' };
  } catch (error) {
    if (!isModuleError(error)) throw error;
    return { kind: error.kind, message: error.message, retryAfterSeconds: error.retryAfterSeconds };
  }
}

/** Every kind of call, CONCURRENCY times at once, spread over the versions. */
async function hammer(u: GoproxyUpstream): Promise<Record<'list' | 'latest' | 'info' | 'fetch', Outcome[]>> {
  const times = <T>(run: (i: number) => Promise<T>) =>
    Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => outcome(() => run(i))));
  const version = (i: number) => VERSIONS[i % VERSIONS.length] ?? 'v1.0.0';
  const [list, latest, info, fetch] = await Promise.all([
    times(() => u.list(MODULE)),
    times(() => u.latest(MODULE)),
    times((i) => u.info(MODULE, version(i))),
    times(async (i) => {
      const fetched = await u.fetch(MODULE, version(i));
      try {
        const chunks: Buffer[] = [];
        for await (const chunk of fetched.openZip()) chunks.push(chunk as Buffer);
        if (!Buffer.concat(chunks).equals(zips.get(version(i)) ?? Buffer.alloc(0))) {
          throw new Error(`the zip of ${version(i)} differs from what the upstream holds`);
        }
      } finally {
        await fetched.release();
      }
    }),
  ]);
  return { list, latest, info, fetch };
}

function kinds(outcomes: Outcome[]): string[] {
  return [...new Set(outcomes.map((o) => o.kind))];
}

beforeAll(async () => {
  treeDir = await createTempDir('hostile-tree-');
  const versionDir = join(treeDir, MODULE, '@v');
  await mkdir(versionDir, { recursive: true });
  for (const version of [...VERSIONS, BOMB_VERSION]) {
    const zip = version === BOMB_VERSION ? Buffer.alloc(4 * 1024 * 1024) : randomBytes(300_000);
    zips.set(version, zip);
    const info = JSON.stringify({ Version: version, Time: '2024-01-02T03:04:05Z' });
    await writeFile(join(versionDir, `${version}.info`), info);
    await writeFile(join(versionDir, `${version}.mod`), `module ${MODULE}\n`);
    await writeFile(join(versionDir, `${version}.zip`), zip);
  }
  await writeFile(join(versionDir, 'list'), VERSIONS.map((v) => `${v}\n`).join(''));
  await writeFile(join(treeDir, MODULE, '@latest'), await readFile(join(versionDir, 'v1.1.0.info')));
  hostile = await startHostileUpstream({ dir: treeDir, oversizedBytes: 64 * 1024 * 1024, trickleMs: 50 });
});

beforeEach(async () => {
  tempDir = await createTempDir('hostile-fetch-');
});

afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
  // Whatever failed, no fetch left a file behind.
  expect(await readdir(tempDir)).toEqual([]);
  await removeDir(tempDir);
});

afterAll(async () => {
  await hostile?.close();
  await removeDir(treeDir);
});

describe('GoproxyUpstream against a hostile upstream, 50 concurrent calls of each kind', () => {
  it.each(['ok', 'http10-close', 'connection-close', 'gzip', 'deflate'] as const)(
    '%s: every call gets the right bytes',
    async (behaviour) => {
      const before = hostile.requestsWith(behaviour);
      const results = await hammer(upstream(behaviour));
      for (const [call, outcomes] of Object.entries(results)) {
        expect(kinds(outcomes), `${call}: ${outcomes.find((o) => o.kind !== 'ok')?.message}`).toEqual(['ok']);
      }
      expect(hostile.requestsWith(behaviour) - before).toBeGreaterThanOrEqual(CONCURRENCY * 5);
    },
  );

  it.each([
    ['oversized-404', 'not-found', /not found upstream/],
    ['status-404', 'not-found', /not found upstream/],
    ['status-410', 'gone', /gone upstream/],
    ['oversized-500', 'bad-gateway', /upstream failed: 500/],
    ['status-500', 'bad-gateway', /upstream failed: 500/],
    ['short-body', 'bad-gateway', /upstream failed: the answer was cut short/],
    ['redirect-loop', 'bad-gateway', /upstream failed: too many redirects/],
    ['stall-body', 'timeout', /upstream timed out/],
    ['stall-headers', 'timeout', /upstream timed out/],
  ] as const)('%s: every call fails as %s', async (behaviour, kind, message) => {
    // Short deadlines only where the upstream stalls: 200 calls share 32 connections.
    const timeoutMs = kind === 'timeout' ? 300 : 5_000;
    const results = await hammer(upstream(behaviour, { timeoutMs }));
    for (const [call, outcomes] of Object.entries(results)) {
      expect(kinds(outcomes), call).toEqual([kind]);
      for (const { message: text } of outcomes) {
        expect(text).toMatch(message);
        expect(text).not.toContain('127.0.0.1');
      }
    }
  });

  it('oversized error bodies: only a bounded prefix of each is read', async () => {
    const before = hostile.oversizedBytesSent;
    const results = await hammer(upstream('oversized-404'));
    expect(kinds([...results.list, ...results.fetch])).toEqual(['not-found']);
    // 200 calls of 64 MiB each: reading them whole would make the server send 12.5 GiB.
    // (What is sent but never read fills the socket buffers: a few MiB per connection.)
    expect(hostile.oversizedBytesSent - before).toBeLessThan((200 * 64 * 1024 * 1024) / 4);
  });

  it.each([
    ['status-429', 120],
    ['status-503', 120],
  ] as const)('%s: bad-gateway, with the Retry-After kept for the caller', async (behaviour, seconds) => {
    const results = await hammer(upstream(behaviour));
    for (const outcomes of Object.values(results)) {
      expect(kinds(outcomes)).toEqual(['bad-gateway']);
      for (const { retryAfterSeconds } of outcomes) {
        // An HTTP-date has one-second resolution and the clock moves on while the call runs.
        expect(retryAfterSeconds).toBeGreaterThanOrEqual(seconds - 2);
        expect(retryAfterSeconds).toBeLessThanOrEqual(seconds);
      }
    }
  });

  it('html-info: an HTML page with status 200 for .info is a bad gateway, the list is fine', async () => {
    const results = await hammer(upstream('html-info'));
    expect(kinds(results.info)).toEqual(['bad-gateway']);
    expect(results.info[0]?.message).toBe(
      `${MODULE}@v1.0.0: upstream failed: the answer is not JSON (.info)`,
    );
    expect(kinds(results.fetch)).toEqual(['bad-gateway']);
    expect(kinds(results.list)).toEqual(['ok']);
    expect(kinds(results.latest)).toEqual(['ok']);
  });

  it('huge-list: a list of 100,000 lines is answered whole', async () => {
    const u = upstream('huge-list', { timeoutMs: 30_000 });
    const lists = await Promise.all(Array.from({ length: CONCURRENCY }, () => u.list(MODULE)));
    const expected = hugeListVersions(100_000);
    for (const versions of lists) expect(versions).toEqual(expected);
  });

  it('limits apply to decoded bytes: a gzip bomb is refused', async () => {
    const u = upstream('gzip', { maxZipBytes: 1024 * 1024 });
    const failed = await outcome(() => u.fetch(MODULE, BOMB_VERSION));
    expect(failed.kind).toBe('bad-gateway');
    expect(failed.message).toContain(`larger than the limit of ${1024 * 1024} bytes`);
  });
});

describe('GoproxyUpstream deadlines against a hostile upstream', () => {
  it('a zip that stalls mid-body times out after timeoutMs of silence, however long zipTimeoutMs is', async () => {
    const u = new GoproxyUpstream({
      url: hostile.urlFor('stall-body', ['zip']),
      tempDir,
      timeoutMs: 300,
      zipTimeoutMs: 600_000,
    });
    upstreams.push(u);
    const failed = await outcome(() => u.fetch(MODULE, 'v1.0.0'));
    expect(failed).toMatchObject({
      kind: 'timeout',
      message: `${MODULE}@v1.0.0: upstream timed out (silent for 300 ms) (.zip)`,
    });
  });

  it('our own deadline is a timeout even when the headers keep trickling in', async () => {
    const u = upstream('stall-headers', { timeoutMs: 400 });
    const failed = await outcome(() => u.latest(MODULE));
    expect(failed.kind).toBe('timeout');
  });

  it("the caller's deadline (a TimeoutError) is a timeout, not cancelled", async () => {
    const u = upstream('stall-body', { timeoutMs: 60_000 });
    const failed = await outcome(() => u.list(MODULE, { signal: AbortSignal.timeout(200) }));
    expect(failed).toMatchObject({ kind: 'timeout', message: `${MODULE}: upstream timed out (list)` });
  });

  it('only the caller going away is cancelled', async () => {
    const u = new GoproxyUpstream({ url: hostile.urlFor('stall-body', ['zip']), tempDir, timeoutMs: 60_000 });
    upstreams.push(u);
    const controller = new AbortController();
    const before = hostile.requestCount(`/${MODULE}/@v/v1.0.0.zip`);
    const fetching = outcome(() => u.fetch(MODULE, 'v1.0.0', { signal: controller.signal }));
    await waitUntil(() => hostile.requestCount(`/${MODULE}/@v/v1.0.0.zip`) > before, {
      what: 'the zip is asked for',
    });
    controller.abort();
    expect((await fetching).kind).toBe('cancelled');
  });

  it('close() ends calls in flight and refuses new ones', async () => {
    const u = new GoproxyUpstream({ url: hostile.urlFor('stall-body'), tempDir, timeoutMs: 60_000 });
    const before = hostile.requestCount(`/${MODULE}/@v/list`);
    const listing = outcome(() => u.list(MODULE));
    await waitUntil(() => hostile.requestCount(`/${MODULE}/@v/list`) > before, {
      what: 'the list is asked for',
    });
    await u.close();
    expect((await listing).kind).toBe('bad-gateway');
    const after = await outcome(() => u.list(MODULE));
    expect(after).toMatchObject({
      kind: 'bad-gateway',
      message: `${MODULE}: upstream failed: the upstream client is closed (list)`,
    });
  });

  it('keeps at most maxConnectionsPerHost connections to one host', async () => {
    const limited = await startHostileUpstream({ dir: treeDir, behaviour: 'ok' });
    try {
      const u = new GoproxyUpstream({ url: limited.url, tempDir, maxConnectionsPerHost: 3 });
      upstreams.push(u);
      const lists = await Promise.all(Array.from({ length: 40 }, () => u.list(MODULE)));
      for (const versions of lists) expect(versions).toEqual(VERSIONS);
      expect(limited.requestCount()).toBe(40);
      expect(limited.peakConnections).toBeLessThanOrEqual(3);
    } finally {
      await limited.close();
    }
  });
});

describe('UpstreamHttpClient', () => {
  it('reads a paused HTTP/1.0 body whole after the upstream has closed the connection (undici #5360)', async () => {
    const client = new UpstreamHttpClient();
    try {
      const url = new URL(`${hostile.urlFor('http10-close')}/${MODULE}/@v/v1.0.0.zip`);
      const ended = hostile.endedConnections;
      const response = await client.get(url, { signal: new AbortController().signal, silenceMs: 10_000 });
      // Nothing is read until the server has sent everything and closed its side: the body
      // sits paused under backpressure while the connection ends, the case that killed
      // undici 7's process.
      await waitUntil(() => hostile.endedConnections > ended, { what: 'the upstream ended the connection' });
      const chunks: Buffer[] = [];
      for await (const chunk of response.body) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(zips.get('v1.0.0') ?? Buffer.alloc(0))).toBe(true);
    } finally {
      client.close();
    }
  });
});
