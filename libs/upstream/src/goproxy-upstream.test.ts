import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isModuleError, type ErrorKind } from '@modproxy/errors';
import { GoproxyUpstream, type GoproxyUpstreamOptions } from './goproxy-upstream';
import { hold, json, LoopbackServer, redirect, reply } from './test-support/loopback-server';

const MODULE = 'example.com/mod';
const INFO = { Version: 'v1.0.0', Time: '2024-01-02T03:04:05Z' };
const MOD = 'module example.com/mod\n\ngo 1.21\n';

let server: LoopbackServer;
let tempDir: string;
const upstreams: GoproxyUpstream[] = [];

function upstream(options: Partial<GoproxyUpstreamOptions> = {}): GoproxyUpstream {
  const created = new GoproxyUpstream({ url: server.url, tempDir, ...options });
  upstreams.push(created);
  return created;
}

interface Failure {
  kind: ErrorKind;
  /** What a client reads. */
  message: string;
  /** What only operators read. */
  detail: string;
  retryAfterSeconds: number | undefined;
}

async function failure(promise: Promise<unknown>): Promise<Failure> {
  try {
    await promise;
  } catch (error) {
    if (isModuleError(error)) {
      const { kind, message, retryAfterSeconds } = error;
      return { kind, message, detail: error.detail ?? '', retryAfterSeconds };
    }
    throw error;
  }
  throw new Error('expected a failure');
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function tempEntries(): Promise<string[]> {
  return readdir(tempDir);
}

function serveVersion(zip: Buffer, module = 'example.com/mod', version = 'v1.0.0'): void {
  const prefix = `/${module}/@v/${version}`;
  server.route(`${prefix}.info`, json({ ...INFO, Version: version }));
  server.route(`${prefix}.mod`, reply(200, MOD));
  server.route(`${prefix}.zip`, reply(200, zip, { 'content-type': 'application/zip' }));
}

beforeEach(async () => {
  server = await LoopbackServer.start();
  tempDir = await mkdtemp(join(tmpdir(), 'goproxy-upstream-test-'));
});

afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
  await server.close();
  await rm(tempDir, { recursive: true, force: true });
});

describe('GoproxyUpstream URLs', () => {
  it('case-escapes module paths and versions in every URL', async () => {
    const module = 'github.com/Azure/Go-SDK';
    const version = 'v1.0.0-RC1';
    const base = '/github.com/!azure/!go-!s!d!k';
    server.route(`${base}/@v/list`, reply(200, 'v1.0.0-RC1\n'));
    server.route(`${base}/@latest`, json({ ...INFO, Version: version }));
    server.route(`${base}/@v/v1.0.0-!r!c1.info`, json({ ...INFO, Version: version }));
    server.route(`${base}/@v/v1.0.0-!r!c1.mod`, reply(200, 'module github.com/Azure/Go-SDK\n'));
    server.route(`${base}/@v/v1.0.0-!r!c1.zip`, reply(200, 'PK-zip'));
    const u = upstream();

    expect(await u.list(module)).toEqual([version]);
    expect(JSON.parse((await u.latest(module)).toString()).Version).toBe(version);
    expect(JSON.parse((await u.info(module, version)).toString()).Version).toBe(version);
    const fetched = await u.fetch(module, version);
    expect(fetched.mod.toString()).toBe('module github.com/Azure/Go-SDK\n');
    await fetched.release();

    expect(server.requests.map((r) => r.path).sort()).toEqual(
      [
        `${base}/@v/list`,
        `${base}/@latest`,
        `${base}/@v/v1.0.0-!r!c1.info`,
        `${base}/@v/v1.0.0-!r!c1.info`,
        `${base}/@v/v1.0.0-!r!c1.mod`,
        `${base}/@v/v1.0.0-!r!c1.zip`,
      ].sort(),
    );
  });

  it('keeps a path prefix of the base URL and ignores its trailing slash', async () => {
    server.route('/go/proxy/example.com/mod/@v/list', reply(200, 'v1.2.3\n'));
    const u = upstream({ url: `${server.url}/go/proxy/` });
    expect(await u.list(MODULE)).toEqual(['v1.2.3']);
    expect(u.name).toBe(`${server.url}/go/proxy`);
  });

  it('refuses an invalid module path or version query before any request', async () => {
    const u = upstream();
    expect((await failure(u.list('Not A Module'))).kind).toBe('invalid-argument');
    expect((await failure(u.info(MODULE, 'bad!version'))).kind).toBe('invalid-argument');
    expect((await failure(u.fetch(MODULE, 'v1.2'))).kind).toBe('invalid-argument');
    expect(server.count()).toBe(0);
  });

  it('refuses a base URL that is not http or https', () => {
    expect(() => new GoproxyUpstream({ url: 'ftp://example.com' })).toThrow(/http or https/);
    expect(() => new GoproxyUpstream({ url: 'not a url' })).toThrow(/invalid upstream GOPROXY URL/);
  });
});

describe('GoproxyUpstream answers', () => {
  it('lists the tagged versions, skipping blanks, pseudo-versions and anything invalid', async () => {
    const body = [
      'v1.0.0',
      '',
      'v1.1.0 2019-01-01T00:00:00Z',
      '   v1.2.0-pre   ',
      'not-a-version',
      'v1.3',
      'v0.0.0-20190101000000-abcdefabcdef',
      'v2.0.0+incompatible',
      'v1.0.0\r',
      '',
    ].join('\n');
    server.route('/example.com/mod/@v/list', reply(200, body));
    const versions = await upstream().list(MODULE);
    expect([...versions].sort()).toEqual(['v1.0.0', 'v1.1.0', 'v1.2.0-pre', 'v2.0.0+incompatible']);
  });

  it('returns an empty list for an empty body', async () => {
    server.route('/example.com/mod/@v/list', reply(200, ''));
    expect(await upstream().list(MODULE)).toEqual([]);
  });

  it('returns the upstream @latest and .info bytes unchanged', async () => {
    const latest = '{"Version":"v1.4.0","Time":"2024-05-06T07:08:09Z","Origin":{"VCS":"git"}}';
    server.route('/example.com/mod/@latest', reply(200, latest, { 'content-type': 'application/json' }));
    server.route(
      '/example.com/mod/@v/master.info',
      reply(200, '{"Version":"v1.4.1-0.20240506070809-0123456789ab"}'),
    );
    const u = upstream();
    expect((await u.latest(MODULE)).toString()).toBe(latest);
    // A query resolves to the canonical version the upstream reports.
    expect(JSON.parse((await u.info(MODULE, 'master')).toString())).toEqual({
      Version: 'v1.4.1-0.20240506070809-0123456789ab',
    });
  });

  it.each([
    ['not JSON', 'this is not json'],
    ['no Version', '{"Time":"2024-01-01T00:00:00Z"}'],
    ['a non-canonical Version', '{"Version":"v1.2"}'],
  ])('answers bad-gateway when @latest has %s', async (_what, body) => {
    server.route('/example.com/mod/@latest', reply(200, body));
    expect((await failure(upstream().latest(MODULE))).kind).toBe('bad-gateway');
  });

  it('refuses .info for another version than the canonical one asked for', async () => {
    server.route('/example.com/mod/@v/v1.0.0.info', json({ ...INFO, Version: 'v1.0.1' }));
    const error = await failure(upstream().info(MODULE, 'v1.0.0'));
    expect(error.kind).toBe('bad-gateway');
    expect(error.message).toContain('v1.0.1 instead of v1.0.0');
  });

  it('refuses a metadata body larger than maxMetadataBytes', async () => {
    server.route('/example.com/mod/@v/list', reply(200, 'v1.0.0\n'.repeat(1000)));
    const error = await failure(upstream({ maxMetadataBytes: 1024 }).list(MODULE));
    expect(error.kind).toBe('bad-gateway');
    expect(error.message).toContain('limit of 1024 bytes');
  });
});

describe('GoproxyUpstream status mapping', () => {
  it.each([
    [404, 'not-found'],
    [410, 'gone'],
    [400, 'bad-gateway'],
    [401, 'bad-gateway'],
    [403, 'bad-gateway'],
    [429, 'bad-gateway'],
    [500, 'bad-gateway'],
    [502, 'bad-gateway'],
    [503, 'bad-gateway'],
  ] as const)(
    'maps HTTP %i to %s, telling the client what happened and the operator what upstream said',
    async (status, kind) => {
      server.route('/example.com/mod/@v/v1.0.0.info', reply(status, `explanation for ${status}\n`));
      const error = await failure(upstream().info(MODULE, 'v1.0.0'));
      expect(error.kind).toBe(kind);
      const what =
        status === 404
          ? 'not found upstream'
          : status === 410
            ? 'gone upstream'
            : `upstream failed: ${status}`;
      expect(error.message).toBe(`example.com/mod@v1.0.0: ${what} (.info)`);
      expect(error.detail).toContain(`${server.url}/example.com/mod/@v/v1.0.0.info: ${status}`);
      expect(error.detail).toContain(`explanation for ${status}`);
    },
  );

  it('never puts the upstream URL, its credentials or its body in the message', async () => {
    server.route(
      '/example.com/mod/@v/list',
      reply(404, '<!DOCTYPE HTML><html>File not found for alice:s3cret, Bearer tok-123456</html>'),
    );
    const withUserinfo = server.url.replace('http://', 'http://alice:s3cret@');
    const cases = [
      { options: { url: withUserinfo }, secrets: ['alice', 's3cret'] },
      { options: { headers: { authorization: 'Bearer tok-123456' } }, secrets: ['tok-123456'] },
    ];
    for (const { options, secrets } of cases) {
      const error = await failure(upstream(options).list(MODULE));
      expect(error.kind).toBe('not-found');
      expect(error.message).toBe('example.com/mod: not found upstream (list)');
      expect(error.detail).toContain('File not found');
      // An upstream that echoes the credentials it was sent does not get them into the logs.
      for (const secret of secrets) expect(error.detail).not.toContain(secret);
      expect(error.detail).not.toContain('@127.0.0.1');
    }
  });

  it('keeps only a short excerpt of a long error body in the detail', async () => {
    const long = `${'gone because '.repeat(50)}END-MARKER ${'x'.repeat(20_000)}`;
    server.route('/example.com/mod/@v/list', reply(410, long));
    const error = await failure(upstream().list(MODULE));
    expect(error.kind).toBe('gone');
    expect(error.detail).toContain('gone because gone because');
    expect(error.detail).not.toContain('END-MARKER');
    expect(error.detail.length).toBeLessThan(400);
  });

  it.each([
    ['seconds', () => '120', 120],
    ['an HTTP-date', () => new Date(Date.now() + 90_000).toUTCString(), 90],
  ])('passes on Retry-After in %s from a 429 or a 503', async (_form, value, seconds) => {
    for (const status of [429, 503]) {
      server.route('/example.com/mod/@v/list', reply(status, 'slow down', { 'retry-after': value() }));
      const error = await failure(upstream().list(MODULE));
      expect(error.kind).toBe('bad-gateway');
      expect(error.message).toBe(`example.com/mod: upstream failed: ${status} (list)`);
      // An HTTP-date has one-second resolution and the clock moves on while the call runs.
      expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(seconds - 2);
      expect(error.retryAfterSeconds).toBeLessThanOrEqual(seconds);
    }
    server.route('/example.com/mod/@v/list', reply(500, 'broken'));
    expect((await failure(upstream().list(MODULE))).retryAfterSeconds).toBeUndefined();
  });

  it('maps a refused connection to bad-gateway', async () => {
    const gone = await LoopbackServer.start();
    const url = gone.url;
    await gone.close();
    const error = await failure(upstream({ url }).list(MODULE));
    expect(error.kind).toBe('bad-gateway');
    expect(error.message).toBe('example.com/mod: upstream failed: connection refused (list)');
    expect(error.detail).toMatch(/ECONNREFUSED/);
  });

  it('maps a connection dropped before the answer to bad-gateway', async () => {
    server.route('/example.com/mod/@v/list', (_request, response) => {
      response.socket?.destroy();
    });
    expect((await failure(upstream().list(MODULE))).kind).toBe('bad-gateway');
  });

  it('maps an upstream named by host on a closed loopback port to bad-gateway', async () => {
    // A name, so the lookup path runs too; `localhost` comes from the hosts file and the port is
    // closed, so nothing is asked of a DNS server and nothing leaves the machine.
    const gone = await LoopbackServer.start();
    const port = new URL(gone.url).port;
    await gone.close();
    const error = await failure(upstream({ url: `http://localhost:${port}` }).list(MODULE));
    expect(error.kind).toBe('bad-gateway');
  });
});

describe('GoproxyUpstream deadlines and cancellation', () => {
  it('times out when the upstream does not answer within timeoutMs', async () => {
    server.route('/example.com/mod/@v/list', hold());
    const error = await failure(upstream({ timeoutMs: 200 }).list(MODULE));
    expect(error.kind).toBe('timeout');
  });

  it('times out when the body trickles past the total deadline', async () => {
    server.route('/example.com/mod/@v/list', (_request, response) => {
      response.writeHead(200);
      const tick = setInterval(() => response.write('v1.0.0\n'), 20);
      response.on('close', () => clearInterval(tick));
    });
    const error = await failure(upstream({ timeoutMs: 300 }).list(MODULE));
    expect(error.kind).toBe('timeout');
  });

  it('reports cancelled when the caller aborts', async () => {
    const controller = new AbortController();
    // Aborted once the request has reached the upstream, which never answers.
    server.route('/example.com/mod/@latest', () => controller.abort());
    const error = await failure(upstream().latest(MODULE, { signal: controller.signal }));
    expect(error.kind).toBe('cancelled');
    expect(server.count('/example.com/mod/@latest')).toBe(1);
  });

  it('sends nothing for an already aborted signal', async () => {
    const error = await failure(upstream().list(MODULE, { signal: AbortSignal.abort() }));
    expect(error.kind).toBe('cancelled');
    expect(server.count()).toBe(0);
  });
});

describe('GoproxyUpstream requests', () => {
  it('follows redirects', async () => {
    server.route('/example.com/mod/@v/list', redirect('/moved/example.com/mod/@v/list', 301));
    server.route('/moved/example.com/mod/@v/list', redirect('/final/list', 307));
    server.route('/final/list', reply(200, 'v1.0.0\n'));
    expect(await upstream().list(MODULE)).toEqual(['v1.0.0']);
    expect(server.count('/final/list')).toBe(1);
  });

  it('gives up on a redirect loop and on too many redirects', async () => {
    server.route('/example.com/mod/@v/list', redirect('/example.com/mod/@v/list'));
    expect((await failure(upstream().list(MODULE))).kind).toBe('bad-gateway');

    for (let i = 0; i < 5; i++) server.route(`/hop/${i}`, redirect(`/hop/${i + 1}`));
    server.route('/hop/5', reply(200, 'v1.0.0\n'));
    server.route('/example.com/mod/@latest', redirect('/hop/0'));
    const error = await failure(upstream({ maxRedirects: 3 }).latest(MODULE));
    expect(error.kind).toBe('bad-gateway');
    expect(server.count('/hop/5')).toBe(0);
  });

  it('sends the configured headers and user agent, not to another origin after a redirect', async () => {
    const other = await LoopbackServer.start();
    try {
      other.route('/elsewhere/list', reply(200, 'v1.0.0\n'));
      server.route('/example.com/mod/@v/list', redirect(`${other.url}/elsewhere/list`));
      const u = upstream({
        headers: { Authorization: 'Bearer secret', 'X-Extra': 'yes' },
        userAgent: 'test-agent/1',
      });
      expect(await u.list(MODULE)).toEqual(['v1.0.0']);
      const [first] = server.requests;
      expect(first?.headers).toMatchObject({
        authorization: 'Bearer secret',
        'x-extra': 'yes',
        'user-agent': 'test-agent/1',
      });
      const [second] = other.requests;
      expect(second?.headers['authorization']).toBeUndefined();
      expect(second?.headers['user-agent']).toBe('test-agent/1');
    } finally {
      await other.close();
    }
  });

  it('turns userinfo in the URL into Basic authentication and redacts it from its name', async () => {
    server.route('/example.com/mod/@v/list', reply(200, 'v1.0.0\n'));
    const u = upstream({ url: server.url.replace('http://', 'http://alice:s3cret@') });
    expect(u.name).toBe(server.url.replace('http://', 'http://xxxxx@'));
    await u.list(MODULE);
    expect(server.requests[0]?.headers['authorization']).toBe(
      `Basic ${Buffer.from('alice:s3cret').toString('base64')}`,
    );
  });

  it('reuses connections (keep-alive)', async () => {
    server.route('/example.com/mod/@v/list', reply(200, 'v1.0.0\n'));
    const ports = new Set<number>();
    server.route('/example.com/mod/@latest', (request, response) => {
      ports.add(request.socket.remotePort ?? -1);
      json(INFO)(request, response);
    });
    const u = upstream();
    for (let i = 0; i < 5; i++) {
      await u.latest(MODULE);
      // The agent frees the connection just after the body ends; one turn later it is idle.
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(ports.size).toBe(1);
  });
});

describe('GoproxyUpstream fetch', () => {
  it('fetches info, go.mod and zip, and release() removes the zip', async () => {
    const zip = randomBytes(100_000);
    serveVersion(zip);
    const fetched = await upstream().fetch(MODULE, 'v1.0.0');
    expect(fetched.module).toBe(MODULE);
    expect(fetched.version).toBe('v1.0.0');
    expect(JSON.parse(fetched.info.toString())).toEqual(INFO);
    expect(fetched.mod.toString()).toBe(MOD);
    expect(fetched.zipSize).toBe(zip.length);
    expect(fetched.zipPath.startsWith(tempDir)).toBe(true);
    expect((await stat(fetched.zipPath)).size).toBe(zip.length);
    expect((await readAll(fetched.openZip())).equals(zip)).toBe(true);
    // More than once, until released.
    expect((await readAll(fetched.openZip())).equals(zip)).toBe(true);

    await fetched.release();
    expect(existsSync(fetched.zipPath)).toBe(false);
    expect(await tempEntries()).toEqual([]);
    await fetched.release();
    expect(() => fetched.openZip()).toThrow(/released/);
  });

  it('answers not-found without downloading anything when the version is unknown', async () => {
    server.route('/example.com/mod/@v/v1.0.0.info', reply(404, 'unknown revision v1.0.0'));
    const error = await failure(upstream().fetch(MODULE, 'v1.0.0'));
    expect(error.kind).toBe('not-found');
    expect(error.message).toBe('example.com/mod@v1.0.0: not found upstream (.info)');
    expect(error.detail).toContain('unknown revision v1.0.0');
    expect(server.count('/example.com/mod/@v/v1.0.0.zip')).toBe(0);
    expect(await tempEntries()).toEqual([]);
  });

  it('fails and cleans up when the zip is missing', async () => {
    server.route('/example.com/mod/@v/v1.0.0.info', json(INFO));
    server.route('/example.com/mod/@v/v1.0.0.mod', reply(200, MOD));
    const error = await failure(upstream().fetch(MODULE, 'v1.0.0'));
    expect(error.kind).toBe('not-found');
    expect(await tempEntries()).toEqual([]);
  });

  it('refuses info without a Time and info for another version', async () => {
    server.route('/example.com/mod/@v/v1.0.0.info', json({ Version: 'v1.0.0' }));
    expect((await failure(upstream().fetch(MODULE, 'v1.0.0'))).kind).toBe('bad-gateway');
    server.route('/example.com/mod/@v/v1.0.0.info', json({ ...INFO, Version: 'v1.0.1' }));
    expect((await failure(upstream().fetch(MODULE, 'v1.0.0'))).kind).toBe('bad-gateway');
    expect(server.count('/example.com/mod/@v/v1.0.0.zip')).toBe(0);
  });

  it('maps a connection dropped in the middle of the zip to bad-gateway and leaves no file', async () => {
    serveVersion(Buffer.alloc(0));
    server.route('/example.com/mod/@v/v1.0.0.zip', (_request, response) => {
      response.writeHead(200, { 'content-length': String(1024 * 1024) });
      response.write(randomBytes(100_000), () => setTimeout(() => response.socket?.destroy(), 20));
    });
    const error = await failure(upstream().fetch(MODULE, 'v1.0.0'));
    expect(error.kind).toBe('bad-gateway');
    expect(await tempEntries()).toEqual([]);
  });

  it('maps a chunked zip cut off in the middle to bad-gateway', async () => {
    serveVersion(Buffer.alloc(0));
    server.route('/example.com/mod/@v/v1.0.0.zip', (_request, response) => {
      response.writeHead(200);
      response.write(randomBytes(100_000), () => setTimeout(() => response.socket?.destroy(), 20));
    });
    expect((await failure(upstream().fetch(MODULE, 'v1.0.0'))).kind).toBe('bad-gateway');
    expect(await tempEntries()).toEqual([]);
  });

  it('times out a zip download that stalls for timeoutMs, however long zipTimeoutMs is', async () => {
    serveVersion(Buffer.alloc(0));
    server.route('/example.com/mod/@v/v1.0.0.zip', (_request, response) => {
      response.writeHead(200);
      response.write(randomBytes(1000));
    });
    const error = await failure(upstream({ timeoutMs: 300, zipTimeoutMs: 60_000 }).fetch(MODULE, 'v1.0.0'));
    expect(error.kind).toBe('timeout');
    expect(await tempEntries()).toEqual([]);
  });

  it('times out a zip download that keeps trickling past zipTimeoutMs', async () => {
    serveVersion(Buffer.alloc(0));
    server.route('/example.com/mod/@v/v1.0.0.zip', (_request, response) => {
      response.writeHead(200);
      const tick = setInterval(() => response.write(randomBytes(100)), 20);
      response.on('close', () => clearInterval(tick));
    });
    const error = await failure(upstream({ timeoutMs: 5_000, zipTimeoutMs: 400 }).fetch(MODULE, 'v1.0.0'));
    expect(error.kind).toBe('timeout');
    expect(error.message).toContain('400 ms');
    expect(await tempEntries()).toEqual([]);
  });

  it('reports cancelled and cleans up when the caller aborts during the zip', async () => {
    serveVersion(Buffer.alloc(0));
    const controller = new AbortController();
    server.route('/example.com/mod/@v/v1.0.0.zip', (_request, response) => {
      response.writeHead(200);
      response.write(randomBytes(1000), () => controller.abort());
    });
    const error = await failure(upstream().fetch(MODULE, 'v1.0.0', { signal: controller.signal }));
    expect(error.kind).toBe('cancelled');
    expect(await tempEntries()).toEqual([]);
  });

  it('refuses a zip whose Content-Length is over maxZipBytes without reading it', async () => {
    serveVersion(randomBytes(10_000));
    const error = await failure(upstream({ maxZipBytes: 5_000 }).fetch(MODULE, 'v1.0.0'));
    expect(error.kind).toBe('bad-gateway');
    expect(error.message).toContain('limit of 5000 bytes');
    expect(await tempEntries()).toEqual([]);
  });

  it('aborts a streamed zip once it passes maxZipBytes', async () => {
    serveVersion(Buffer.alloc(0));
    let sent = 0;
    let stopped = false;
    server.route('/example.com/mod/@v/v1.0.0.zip', (_request, response) => {
      response.writeHead(200);
      response.on('close', () => (stopped = true));
      // Endless body: only the client's limit ends it.
      const tick = setInterval(() => {
        sent += 64 * 1024;
        response.write(randomBytes(64 * 1024));
      }, 1);
      response.on('close', () => clearInterval(tick));
    });
    const error = await failure(upstream({ maxZipBytes: 1024 * 1024 }).fetch(MODULE, 'v1.0.0'));
    expect(error.kind).toBe('bad-gateway');
    expect(error.message).toContain(`limit of ${1024 * 1024} bytes`);
    await expect.poll(() => stopped).toBe(true);
    expect(sent).toBeLessThan(64 * 1024 * 1024);
    expect(await tempEntries()).toEqual([]);
  });

  it('streams a large zip to disk, byte-exact, without holding it in memory', async () => {
    const total = 64 * 1024 * 1024;
    const chunk = 256 * 1024;
    const sentHash = createHash('sha256');
    // Bytes the server has handed to the kernel: what the client has received, or soon will.
    let flushed = 0;
    serveVersion(Buffer.alloc(0));
    server.route('/example.com/mod/@v/v1.0.0.zip', async (_request, response) => {
      response.writeHead(200, { 'content-length': String(total) });
      const buffers = [Buffer.alloc(chunk), Buffer.alloc(chunk)];
      const written: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
      for (let i = 0; i * chunk < total; i++) {
        const slot = i % 2;
        await written[slot];
        const bytes = randomFillSync(buffers[slot] as Buffer);
        sentHash.update(bytes);
        written[slot] = new Promise((resolve) =>
          response.write(bytes, () => {
            flushed += chunk;
            resolve();
          }),
        );
      }
      await Promise.all(written);
      response.end();
    });

    // While the download runs, what was sent but is not in the temp file yet is what the
    // client holds in memory (plus socket buffers): it must stay far below the zip's size.
    let downloading = true;
    let samples = 0;
    let mostInFlight = 0;
    const watcher = (async () => {
      while (downloading) {
        const onDisk = Math.max(0, ...(await onDiskSizes(tempDir)));
        mostInFlight = Math.max(mostInFlight, flushed - onDisk);
        samples++;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    let fetched;
    try {
      fetched = await upstream().fetch(MODULE, 'v1.0.0');
    } finally {
      downloading = false;
      await watcher;
    }
    expect(fetched.zipSize).toBe(total);
    expect(samples).toBeGreaterThan(3);
    expect(mostInFlight).toBeLessThan(total / 4);

    const readHash = createHash('sha256');
    for await (const part of fetched.openZip()) readHash.update(part as Buffer);
    expect(readHash.digest('hex')).toBe(sentHash.digest('hex'));
    await fetched.release();
    expect(await tempEntries()).toEqual([]);
  });
});

async function onDiskSizes(dir: string): Promise<number[]> {
  const sizes: number[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    try {
      sizes.push((await stat(join(entry.parentPath, entry.name))).size);
    } catch {
      // Removed between readdir and stat.
    }
  }
  return sizes;
}
