import type { Socket } from 'node:net';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@modproxy/observability';
import {
  createFixtureModules,
  createTempDir,
  exportFixturesAsGoproxy,
  type FixtureModules,
  removeDir,
  startStaticGoproxy,
} from '@modproxy/testing';
import { loadProxyConfig } from './config';
import { type RunningProxy, startProxy } from './server';

type LogLine = Record<string, unknown> & { level: string; msg: string };

/**
 * The proxy's answers when direct fetches are under pressure or refused: a full go command
 * queue (503 + Retry-After), a slow VCS host (per-host slots), deadlines (504, logged at warn
 * with the module, the version and which upstream), clients that leave a shared fetch, the
 * module filter (403) and shared version queries. The go command is a wrapper around the real
 * one that records every call and, for a "slow host", blocks until the test releases it.
 */
describe('direct fetches under pressure (through the proxy, real go command)', () => {
  let fixtures: FixtureModules;
  let scripts: string;
  let goBinary: string;
  const running: RunningProxy[] = [];
  let count = 0;

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    scripts = await createTempDir('proxy-pressure-', fixtures.root);
    goBinary = join(scripts, 'go-wrapper');
    // slow.test modules: answer a made-up version list once released. $HOLD_MODULE: the real go
    // command, once released. Anything else: the real go command at once.
    await writeFile(
      goBinary,
      [
        '#!/bin/sh',
        'echo "$*" >> "$GO_CALLS"',
        'case "$*" in',
        '  *slow.test*)',
        '    while [ ! -e "$RELEASE" ]; do sleep 0.02; done',
        `    echo '{"Path":"slow.test/x","Versions":["v1.0.0"]}'`,
        '    exit 0;;',
        '  *"$HOLD_MODULE"*)',
        '    while [ ! -e "$RELEASE" ]; do sleep 0.02; done;;',
        'esac',
        'exec go "$@"',
        '',
      ].join('\n'),
    );
    await chmod(goBinary, 0o755);
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map((proxy) => proxy.shutdown()));
  });

  afterAll(async () => {
    await fixtures?.close();
  });

  async function start(env: Record<string, string>, options: { holdModule?: string } = {}) {
    count++;
    const calls = join(scripts, `calls-${count}.log`);
    const release = join(scripts, `release-${count}`);
    const lines: LogLine[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString('utf8').split('\n'))
          if (line.trim() !== '') lines.push(JSON.parse(line) as LogLine);
        callback();
      },
    });
    const logger = createLogger({ service: 'proxy-pressure-test', level: 'info', destination });
    const config = loadProxyConfig({
      env: { PORT: '0', STORAGE_TYPE: 'memory', UPSTREAM: 'direct', GO_BINARY: goBinary, ...env },
    });
    const proxy = await startProxy(config, logger, {
      goEnv: {
        ...fixtures.directEnv,
        GO_CALLS: calls,
        RELEASE: release,
        HOLD_MODULE: options.holdModule ?? 'no module is held',
      },
    });
    running.push(proxy);
    const goCalls = async (): Promise<string[]> =>
      (await readFile(calls, 'utf8').catch(() => '')).split('\n').filter((line) => line !== '');
    const waitForGoCalls = (atLeast: number) =>
      expect.poll(async () => (await goCalls()).length, { timeout: 30_000 }).toBeGreaterThanOrEqual(atLeast);
    return {
      proxy,
      url: proxy.url,
      lines,
      goCalls,
      waitForGoCalls,
      release: () => writeFile(release, ''),
    };
  }

  it('answers 503 with Retry-After and a text body at once when the go command queue is full', async () => {
    const { url, goCalls, waitForGoCalls, release } = await start({
      GO_CONCURRENCY: '1',
      GO_QUEUE_LIMIT: '1',
    });
    const first = fetch(`${url}/slow.test/a/@v/list`);
    await waitForGoCalls(1);
    // One of these waits in the queue; the other finds it full and is answered while the
    // first still holds the only slot.
    const pending = [fetch(`${url}/slow.test/b/@v/list`), fetch(`${url}/slow.test/c/@v/list`)];
    const refused = await Promise.race(pending);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('10');
    expect(refused.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await refused.text()).toMatch(
      /^slow\.test\/[bc]: too many fetches from version control are waiting; try again shortly\n$/,
    );
    await release();
    const answered = await Promise.all([first, ...pending]);
    const waited = answered.filter((response) => response !== refused);
    expect(waited.map((response) => response.status)).toEqual([200, 200]);
    expect(await Promise.all(waited.map((response) => response.text()))).toEqual(['v1.0.0\n', 'v1.0.0\n']);
    // The refused one never ran a go command.
    expect((await goCalls()).filter((call) => call.includes('slow.test'))).toHaveLength(2);
  });

  it('keeps a slot for other hosts while a slow VCS host holds its own (GO_HOST_CONCURRENCY)', async () => {
    const { url, goCalls, waitForGoCalls, release } = await start({
      GO_CONCURRENCY: '2',
      GO_HOST_CONCURRENCY: '1',
    });
    const slowA = fetch(`${url}/slow.test/a/@v/list`);
    await waitForGoCalls(1);
    const slowB = fetch(`${url}/slow.test/b/@v/list`);
    // Another host's module is fetched and served while slow.test still blocks.
    const zip = await fetch(`${url}/${fixtures.hello.escapedPath}/@v/v1.0.0.zip`);
    expect(zip.status).toBe(200);
    expect((await zip.arrayBuffer()).byteLength).toBeGreaterThan(0);
    expect((await goCalls()).filter((call) => call.includes('slow.test'))).toHaveLength(1);
    await release();
    expect((await Promise.all([slowA, slowB])).map((response) => response.status)).toEqual([200, 200]);
    expect((await goCalls()).filter((call) => call.includes('slow.test'))).toHaveLength(2);
  });

  it('answers 504 when the go command outlives the fetch deadline, logged at warn with module, version and upstream', async () => {
    const { url, lines, waitForGoCalls } = await start({ FETCH_TIMEOUT_MS: '1500' });
    const answer = fetch(`${url}/slow.test/a/@v/v1.0.0.zip`);
    await waitForGoCalls(1);
    const response = await answer;
    expect(response.status).toBe(504);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await response.text()).toMatch(/^slow\.test\/a@v1\.0\.0: timed out/);
    const warned = lines.filter(
      (line) => line.level === 'warn' && line['module'] === 'slow.test/a' && line['version'] === 'v1.0.0',
    );
    expect(warned.map((line) => line.msg).sort()).toEqual(['fetch failed', 'request failed']);
    for (const line of warned) {
      expect(line['kind']).toBe('timeout');
      expect(line['op']).toBe('upstream.direct.fetch');
      expect(String(line['detail'])).toMatch(/^upstream direct: /);
    }
  });

  it('answers 504 when an upstream proxy outlives the fetch deadline, logged at warn naming the upstream call', async () => {
    const upstreamDir = await createTempDir('proxy-pressure-upstream-');
    await exportFixturesAsGoproxy(fixtures, upstreamDir, { modules: [fixtures.hello] });
    const upstream = await startStaticGoproxy(upstreamDir);
    try {
      await upstream.setMode('hold');
      const { url, lines } = await start({ UPSTREAM: upstream.url, FETCH_TIMEOUT_MS: '1500' });
      const response = await fetch(`${url}/${fixtures.hello.escapedPath}/@v/v1.0.0.zip`);
      expect(response.status).toBe(504);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
      const body = await response.text();
      expect(body).toContain(`${fixtures.hello.path}@v1.0.0`);
      expect(body).not.toContain(upstream.url);
      const warned = lines.filter(
        (line) =>
          line.level === 'warn' && line['module'] === fixtures.hello.path && line.msg === 'request failed',
      );
      expect(warned).toHaveLength(1);
      expect(warned[0]?.['kind']).toBe('timeout');
      expect(warned[0]?.['version']).toBe('v1.0.0');
      expect(String(warned[0]?.['op'])).toMatch(/^upstream\.goproxy\./);
    } finally {
      await upstream.stop();
      await removeDir(upstreamDir);
    }
  });

  it('does not log a client that leaves a shared fetch as an unexpected error, and serves the client that stays', async () => {
    const { proxy, url, lines, waitForGoCalls, release } = await start(
      {},
      { holdModule: fixtures.hello.path },
    );
    const closed: Socket[] = [];
    proxy.server.on('connection', (socket: Socket) => socket.once('close', () => closed.push(socket)));
    const path = `${url}/${fixtures.hello.escapedPath}/@v/v1.0.0.zip`;
    const leaving = new AbortController();
    const left = fetch(path, { signal: leaving.signal }).catch((error: unknown) => error);
    const staying = fetch(path);
    await waitForGoCalls(1);
    leaving.abort();
    expect(await left).toBeInstanceOf(Error);
    // The server saw that client go; what it does about it runs before the next turn.
    await expect.poll(() => closed.length).toBeGreaterThanOrEqual(1);
    await new Promise((resolve) => setImmediate(resolve));
    await release();
    const response = await staying;
    expect(response.status).toBe(200);
    expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(0);
    expect(lines.filter((line) => line.level === 'error' || line.msg === 'unexpected error')).toEqual([]);
    expect(lines.filter((line) => line.level === 'warn')).toEqual([]);
  });

  it('answers 403 with a text body for a denied module on every endpoint, running no go command', async () => {
    const { url, goCalls } = await start({
      ALLOWED_MODULES: 'example.test',
      DENIED_MODULES: `${fixtures.hello.path},example.test/major.git/v2`,
    });
    const refused: Array<[string, string]> = [
      [fixtures.hello.escapedPath, 'is denied by'],
      [fixtures.majorV2.escapedPath, 'is denied by'],
      ['other.test/lib', 'is not allowed by'],
    ];
    for (const [escaped, why] of refused) {
      for (const file of [
        '@v/list',
        '@latest',
        '@v/v1.0.0.info',
        '@v/main.info',
        '@v/v1.0.0.mod',
        '@v/v1.0.0.zip',
      ]) {
        const response = await fetch(`${url}/${escaped}/${file}`);
        expect(response.status, `${escaped}/${file}`).toBe(403);
        expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
        expect(await response.text()).toMatch(
          new RegExp(`^module \\S+ ${why} this server's module filter\\n$`),
        );
      }
    }
    expect(await goCalls()).toEqual([]);
    // A module the filter allows is fetched as usual.
    const allowed = await fetch(`${url}/${fixtures.mixedCase.escapedPath}/@v/v1.0.0.mod`);
    expect(allowed.status).toBe(200);
    expect(await goCalls()).toHaveLength(1);
  });

  it('refuses to start on bad filter or limit values, naming the variable', () => {
    expect(() => loadProxyConfig({ env: { DENIED_MODULES: 'example.com, other.test' } })).toThrow(
      /DENIED_MODULES: pattern " other.test" contains white space/,
    );
    expect(() => loadProxyConfig({ env: { ALLOWED_MODULES: 'example.com/[a' } })).toThrow(
      /ALLOWED_MODULES: pattern "example.com\/\[a" is not a valid glob/,
    );
    expect(() => loadProxyConfig({ env: { GO_CONCURRENCY: '2', GO_HOST_CONCURRENCY: '3' } })).toThrow(
      /GO_HOST_CONCURRENCY: must not exceed GO_CONCURRENCY \(2\)/,
    );
    expect(() => loadProxyConfig({ env: { GO_QUEUE_LIMIT: '-1' } })).toThrow(
      /GO_QUEUE_LIMIT: must be 0 or more/,
    );
    expect(() => loadProxyConfig({ env: { QUERY_CACHE_TTL_MS: 'soon' } })).toThrow(/QUERY_CACHE_TTL_MS: /);
  });

  it('runs one go command for concurrent .info requests of a branch, and answers the next ones from memory', async () => {
    const { url, goCalls } = await start({ QUERY_CACHE_TTL_MS: '60000' });
    const path = `${url}/${fixtures.hello.escapedPath}/@v/main.info`;
    const responses = await Promise.all(Array.from({ length: 10 }, () => fetch(path)));
    expect(responses.map((response) => response.status)).toEqual(Array(10).fill(200));
    const versions = await Promise.all(
      responses.map(async (response) => (JSON.parse(await response.text()) as { Version: string }).Version),
    );
    expect(new Set(versions)).toEqual(new Set([fixtures.hello.untagged?.version]));
    const again = await fetch(path);
    expect(again.status).toBe(200);
    await again.text();
    const queries = (await goCalls()).filter(
      (call) => call.startsWith('list -m -json') && call.endsWith('@main'),
    );
    expect(queries).toEqual([`list -m -json ${fixtures.hello.path}@main`]);
  });
});
