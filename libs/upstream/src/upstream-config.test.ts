import { readdir, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '@modproxy/config';
import { fetchTempDirs, leftoverFetchDirAgeMs, removeLeftoverTempDirs } from '@modproxy/runtime';
import { createTempDir, removeDir } from '@modproxy/testing';
import { json, LoopbackServer, reply } from './test-support/loopback-server';
import { createUpstreamFromConfig, upstreamConfigShape } from './upstream-config';

const schema = z.object(upstreamConfigShape);
const SECRET = 'tok3n-s3cret';

describe('upstream configuration', () => {
  it.each([
    ['a CR LF (a second header)', `Bearer ${SECRET}\r\nX-Injected: yes`],
    ['a bare LF', `Bearer ${SECRET}\n`],
    ['a NUL', `Bearer ${SECRET}\u0000`],
    ['DEL', `Bearer ${SECRET}\u007f`],
    ['a character beyond Latin-1', `Bearer ${SECRET}\u2028`],
    ['a leading space', ` Bearer ${SECRET}`],
    ['a trailing tab', `Bearer ${SECRET}\t`],
  ])('refuses an UPSTREAM_AUTHORIZATION with %s, naming the variable and never the value', (_what, value) => {
    let message = '';
    try {
      loadConfig(schema, { env: { UPSTREAM_AUTHORIZATION: value } });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/UPSTREAM_AUTHORIZATION: must be a valid HTTP header value/);
    expect(message).not.toContain(SECRET);
  });

  it('takes what a header value may be: visible characters, inner spaces and tabs, Latin-1', () => {
    for (const value of [`Bearer ${SECRET}`, 'Basic YWxpY2U6czNjcmV0', 'Token a\tb', 'x', 'caf\u00e9']) {
      expect(loadConfig(schema, { env: { UPSTREAM_AUTHORIZATION: value } }).UPSTREAM_AUTHORIZATION).toBe(
        value,
      );
    }
  });
});

describe('createUpstreamFromConfig with GO_WORK_DIR', () => {
  let server: LoopbackServer;
  let workDir: string;
  beforeEach(async () => {
    server = await LoopbackServer.start();
    workDir = await createTempDir('upstream-work-dir-');
  });
  afterEach(async () => {
    await server.close();
    await removeDir(workDir);
  });

  it('keeps an upstream proxy’s fetched zip in GO_WORK_DIR, where the sweep of leftovers looks', async () => {
    const module = 'example.test/work/dir';
    const prefix = `/${module}/@v/v1.0.0`;
    server.route(`${prefix}.info`, json({ Version: 'v1.0.0', Time: '2024-01-02T03:04:05Z' }));
    server.route(`${prefix}.mod`, reply(200, `module ${module}\n`));
    server.route(`${prefix}.zip`, reply(200, 'PK-not-checked-here'));
    const config = loadConfig(schema, { env: { UPSTREAM: server.url, GO_WORK_DIR: workDir } });
    const upstream = createUpstreamFromConfig(config, { fetchTimeoutMs: 10_000 });
    const fetched = await upstream.fetch(module, 'v1.0.0');
    try {
      const [fetchDir, ...more] = await readdir(workDir);
      expect(more).toEqual([]);
      expect(fetchDir).toMatch(/^goproxy-fetch-/);
      expect(dirname(fetched.zipPath)).toBe(join(workDir, fetchDir ?? ''));

      // As a crash would leave it: older than any fetch's deadline. The sweep the apps run finds it.
      const longAgo = new Date(Date.now() - 2 * leftoverFetchDirAgeMs(10_000));
      await utimes(join(workDir, fetchDir ?? ''), longAgo, longAgo);
      const removed: string[] = [];
      for (const target of fetchTempDirs(workDir, 10_000))
        removed.push(...(await removeLeftoverTempDirs(target)));
      expect(removed).toEqual([fetchDir]);
    } finally {
      await fetched.release();
      await upstream.close?.();
    }
  });
});
