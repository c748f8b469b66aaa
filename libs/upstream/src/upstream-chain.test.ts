import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { errors, isModuleError, type ErrorKind } from '@modproxy/errors';
import { ModuleFilter } from '@modproxy/gomod';
import { waitUntil } from '@modproxy/testing';
import { GoproxyUpstream } from './goproxy-upstream';
import { parseGoproxyList } from './parse-goproxy';
import { hold, json, LoopbackServer, reply, type RouteHandler } from './test-support/loopback-server';
import type { FetchedVersion, Upstream } from './upstream';
import { createUpstreamChain, UpstreamChain } from './upstream-chain';

const MODULE = 'example.com/mod';
const PATHS = [
  '/example.com/mod/@v/list',
  '/example.com/mod/@latest',
  '/example.com/mod/@v/v1.0.0.info',
  '/example.com/mod/@v/v1.0.0.mod',
  '/example.com/mod/@v/v1.0.0.zip',
];

/** Each method of the port, reduced to a string that says which upstream answered. */
const METHODS: Record<string, (upstream: Upstream) => Promise<string>> = {
  list: async (u) => (await u.list(MODULE)).join(' '),
  latest: async (u) => JSON.parse((await u.latest(MODULE)).toString()).Origin.From,
  info: async (u) => JSON.parse((await u.info(MODULE, 'v1.0.0')).toString()).Origin.From,
  fetch: async (u) => {
    const fetched = await u.fetch(MODULE, 'v1.0.0');
    try {
      return fetched.mod.toString();
    } finally {
      await fetched.release();
    }
  },
};

/** Serves the whole module from `server`, every answer saying it came from `label`. */
function serveModule(server: LoopbackServer, label: string): void {
  const info = { Version: 'v1.0.0', Time: '2024-01-02T03:04:05Z', Origin: { From: label } };
  server.route('/example.com/mod/@v/list', reply(200, `v1.0.0\nv1.0.1-${label}\n`));
  server.route('/example.com/mod/@latest', json(info));
  server.route('/example.com/mod/@v/v1.0.0.info', json(info));
  server.route('/example.com/mod/@v/v1.0.0.mod', reply(200, label));
  server.route('/example.com/mod/@v/v1.0.0.zip', reply(200, `zip from ${label}`));
}

function answerEverything(server: LoopbackServer, handler: RouteHandler): void {
  for (const path of PATHS) server.route(path, handler);
}

/** Stands in for the direct (VCS) upstream, which another library provides. */
class RecordingUpstream implements Upstream {
  readonly name = 'direct';
  calls = 0;
  constructor(private readonly failure?: () => Error) {}

  private async answer(): Promise<string> {
    this.calls++;
    if (this.failure) throw this.failure();
    return 'direct';
  }
  async list(): Promise<string[]> {
    return [`v1.0.1-${await this.answer()}`];
  }
  async latest(): Promise<Buffer> {
    return Buffer.from(JSON.stringify({ Version: 'v1.0.0', Origin: { From: await this.answer() } }));
  }
  async info(): Promise<Buffer> {
    return this.latest();
  }
  async fetch(module: string, version: string): Promise<FetchedVersion> {
    const from = await this.answer();
    return {
      module,
      version,
      info: Buffer.from('{}'),
      mod: Buffer.from(from),
      zipSize: 0,
      zipPath: '/nonexistent',
      openZip: () => Readable.from([]),
      release: async () => undefined,
    };
  }
}

let a: LoopbackServer;
let b: LoopbackServer;
let tempDir: string;
let direct: RecordingUpstream;
const goproxies: GoproxyUpstream[] = [];

function chain(value: string, timeoutMs = 10_000): UpstreamChain {
  return createUpstreamChain(parseGoproxyList(value), {
    direct: () => direct,
    goproxy: (url) => {
      const upstream = new GoproxyUpstream({ url, tempDir, timeoutMs });
      goproxies.push(upstream);
      return upstream;
    },
  });
}

async function failure(
  promise: Promise<unknown>,
): Promise<{ kind: ErrorKind; message: string; detail: string | undefined }> {
  try {
    await promise;
  } catch (error) {
    if (isModuleError(error)) return { kind: error.kind, message: error.message, detail: error.detail };
    throw error;
  }
  throw new Error('expected a failure');
}

beforeEach(async () => {
  [a, b] = await Promise.all([LoopbackServer.start(), LoopbackServer.start()]);
  tempDir = await mkdtemp(join(tmpdir(), 'upstream-chain-test-'));
  direct = new RecordingUpstream();
  serveModule(b, 'B');
});

afterEach(async () => {
  await Promise.all(goproxies.splice(0).map((u) => u.close()));
  await Promise.all([a.close(), b.close()]);
  expect(await readdir(tempDir)).toEqual([]);
  await rm(tempDir, { recursive: true, force: true });
});

describe.each(Object.keys(METHODS))('UpstreamChain.%s', (method) => {
  const call = METHODS[method] as (upstream: Upstream) => Promise<string>;

  it('A,B: stops at A when A fails with 500, without asking B', async () => {
    answerEverything(a, reply(500, 'internal trouble'));
    const error = await failure(call(chain(`${a.url},${b.url}`)));
    expect(error.kind).toBe('bad-gateway');
    expect(error.detail).toContain('internal trouble');
    expect(b.count()).toBe(0);
  });

  it('A|B: moves on to B when A fails with 500', async () => {
    answerEverything(a, reply(500, 'internal trouble'));
    expect(await call(chain(`${a.url}|${b.url}`))).toContain('B');
    expect(a.count()).toBeGreaterThan(0);
  });

  it.each([404, 410])('A,B: moves on to B when A answers %i', async (status) => {
    answerEverything(a, reply(status, 'not here'));
    expect(await call(chain(`${a.url},${b.url}`))).toContain('B');
    expect(a.count()).toBeGreaterThan(0);
  });

  it('A,B: stops at a timeout; A|B moves on', async () => {
    answerEverything(a, hold());
    expect((await failure(call(chain(`${a.url},${b.url}`, 200)))).kind).toBe('timeout');
    expect(b.count()).toBe(0);
    expect(await call(chain(`${a.url}|${b.url}`, 200))).toContain('B');
  });

  it('A,B: stops when A refuses connections; A|B moves on', async () => {
    const closed = await LoopbackServer.start();
    await closed.close();
    expect((await failure(call(chain(`${closed.url},${b.url}`)))).kind).toBe('bad-gateway');
    expect(b.count()).toBe(0);
    expect(await call(chain(`${closed.url}|${b.url}`))).toContain('B');
  });

  it('A,off,B: off answers not-found and nothing after it is asked', async () => {
    const error = await failure(call(chain(`${a.url},off,${b.url}`)));
    expect(error.kind).toBe('not-found');
    expect(error.message).toContain('module lookup disabled by GOPROXY=off');
    expect(a.count()).toBeGreaterThan(0);
    expect(b.count()).toBe(0);
  });

  it('A,direct: direct answers what A does not have', async () => {
    expect(await call(chain(`${a.url},direct`))).toContain('direct');
    expect(direct.calls).toBe(1);
  });

  it('A,direct: a failing A stops before direct', async () => {
    answerEverything(a, reply(502, 'bad upstream'));
    expect((await failure(call(chain(`${a.url},direct`)))).kind).toBe('bad-gateway');
    expect(direct.calls).toBe(0);
  });
});

describe('UpstreamChain errors', () => {
  it('reports the last not-found when every upstream says not-found', async () => {
    answerEverything(b, reply(404, 'B has nothing'));
    const error = await failure(chain(`${a.url},${b.url}`).info(MODULE, 'v1.0.0'));
    expect(error.kind).toBe('not-found');
    expect(error.detail).toContain('B has nothing');
  });

  it('reports an earlier failure over a later not-found (A|B, A 500, B 404)', async () => {
    answerEverything(a, reply(500, 'A is broken'));
    answerEverything(b, reply(404, 'B has nothing'));
    const error = await failure(chain(`${a.url}|${b.url}`).list(MODULE));
    expect(error.kind).toBe('bad-gateway');
    expect(error.detail).toContain('A is broken');
  });

  it("reports direct's error over a proxy's (A|direct, A 500, direct not-found)", async () => {
    answerEverything(a, reply(500, 'A is broken'));
    direct = new RecordingUpstream(() => errors.notFound('upstream.direct.info', 'unknown revision'));
    const error = await failure(chain(`${a.url}|direct`).info(MODULE, 'v1.0.0'));
    expect(error.kind).toBe('not-found');
    expect(error.message).toBe('unknown revision');
  });

  it('stops walking when the caller aborts, even after |', async () => {
    answerEverything(a, hold());
    const controller = new AbortController();
    const pending = failure(chain(`${a.url}|${b.url}`).latest(MODULE, { signal: controller.signal }));
    // Abort while A holds the request: the chain is midway, and must not go on to B.
    await waitUntil(() => a.count() === 1, { what: 'A has the request' });
    controller.abort();
    const error = await pending;
    expect(error.kind).toBe('cancelled');
    expect(b.count()).toBe(0);
  });

  it('answers timeout, not cancelled, when a deadline fired the caller’s signal', async () => {
    const signal = AbortSignal.abort(new DOMException('the fetch deadline passed', 'TimeoutError'));
    const error = await failure(chain(`${a.url}|${b.url}`).list(MODULE, { signal }));
    expect(error.kind).toBe('timeout');
    expect(error.message).toContain(MODULE);
    expect(a.count() + b.count()).toBe(0);
  });

  it('turns a foreign error of an upstream into a ModuleError', async () => {
    direct = new RecordingUpstream(() => new TypeError('oops'));
    const error = await failure(chain('direct').list(MODULE));
    expect(error.kind).toBe('internal');
  });
});

describe('UpstreamChain', () => {
  it('fetches the zip from the upstream that has it', async () => {
    const fetched = await chain(`${a.url},${b.url}`).fetch(MODULE, 'v1.0.0');
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of fetched.openZip()) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('zip from B');
      expect(a.count('/example.com/mod/@v/v1.0.0.zip')).toBe(0);
    } finally {
      await fetched.release();
    }
  });

  it('is named after its list', () => {
    expect(chain(`${a.url},${b.url}|direct`).name).toBe(`${a.url},${b.url}|direct`);
    expect(chain(`${a.url}|off`).name).toBe(`${a.url}|off`);
  });

  it('never asks any upstream about a module its filter refuses', async () => {
    serveModule(a, 'A');
    const filtered = createUpstreamChain(
      parseGoproxyList(`${a.url},direct`),
      { direct: () => direct, goproxy: (url) => new GoproxyUpstream({ url, tempDir }) },
      { moduleFilter: new ModuleFilter({ deny: 'example.com/mod' }) },
    );
    for (const call of Object.values(METHODS)) {
      const error = await failure(call(filtered));
      expect(error.kind).toBe('forbidden');
      expect(error.message).toContain(MODULE);
    }
    expect([a.count(), direct.calls]).toEqual([0, 0]);
    await filtered.close();
  });

  it('needs at least one upstream', () => {
    expect(() => new UpstreamChain([])).toThrow(/at least one/);
  });
});
