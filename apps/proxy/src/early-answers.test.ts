import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapePath } from '@modproxy/gomod';
import { createLogger } from '@modproxy/observability';
import { MemoryStorage } from '@modproxy/storage';
import {
  createTempDir,
  PausingGoproxy,
  removeDir,
  waitUntil,
  writeLargeModule,
  type LargeModule,
} from '@modproxy/testing';
import { loadProxyConfig } from './config';
import { startProxy, type RunningProxy } from './server';

const MiB = 1024 * 1024;

/**
 * The proxy with an upstream GOPROXY (real, on loopback, able to hold a zip halfway): a cold
 * `.mod` is answered from upstream alone before the zip is downloaded, marked as not to be kept;
 * a zip whose go.mod is not the one served is refused, counted and logged.
 */
describe('early .mod and .info answers through the proxy (an upstream GOPROXY)', () => {
  let dir: string;
  let goproxy: PausingGoproxy;
  let proxy: RunningProxy;
  let storage: MemoryStorage;
  let large: LargeModule;
  let mismatched: LargeModule;
  const lines: string[] = [];

  beforeAll(async () => {
    dir = await createTempDir('proxy-early-');
    large = await writeLargeModule(dir, { module: 'example.test/early/Large', zipBytes: 8 * MiB });
    mismatched = await writeLargeModule(dir, { module: 'example.test/early/mismatched', zipBytes: 1 * MiB });
    const modFile = join(dir, ...escapePath(mismatched.module).split('/'), '@v', `${mismatched.version}.mod`);
    await writeFile(modFile, `module ${mismatched.module}\n\ngo 1.20\n`);
    goproxy = await PausingGoproxy.start(dir);
    storage = new MemoryStorage();
    const logger = createLogger({
      service: 'proxy-test',
      level: 'warn',
      destination: new Writable({
        write: (chunk: Buffer, _encoding, done) => {
          lines.push(chunk.toString());
          done();
        },
      }),
    });
    const config = loadProxyConfig({ env: { PORT: '0', STORAGE_TYPE: 'memory', UPSTREAM: goproxy.url } });
    proxy = await startProxy(config, logger, { storage });
  });

  afterAll(async () => {
    await proxy?.shutdown();
    await goproxy?.stop();
    await removeDir(dir);
  });

  const url = (module: LargeModule, file: string) =>
    `${proxy.url}/${escapePath(module.module)}/@v/${module.version}.${file}`;
  const upstreamPath = (module: LargeModule, file: string) =>
    `/${escapePath(module.module)}/@v/${module.version}.${file}`;

  it('answers a cold .mod before the zip is downloaded, not to be kept, and from storage once it is verified', async () => {
    const zip = goproxy.pauseAfter(upstreamPath(large, 'zip'), 64 * 1024);
    const early = await fetch(url(large, 'mod'));
    expect(early.status).toBe(200);
    expect(Buffer.from(await early.arrayBuffer()).equals(large.mod)).toBe(true);
    expect(early.headers.get('cache-control')).toBe('no-store');
    expect(early.headers.get('x-modproxy-source')).toBe('upstream');
    await zip.reached;
    expect(await storage.exists(large.module, large.version)).toBe(false);
    zip.resume();
    await waitUntil(() => storage.exists(large.module, large.version), {
      what: 'the zip behind it is stored',
    });
    await proxy.composition.service.fetchBehindEarlyAnswer(large.module, large.version);
    const stored = await fetch(url(large, 'mod'));
    expect(Buffer.from(await stored.arrayBuffer()).equals(large.mod)).toBe(true);
    expect(stored.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(stored.headers.get('x-modproxy-source')).toBe('storage');
    expect(goproxy.requestCount(upstreamPath(large, 'zip'))).toBe(1);
  });

  it('refuses, counts and logs a zip whose go.mod is not the one served, and stores nothing', async () => {
    const early = await fetch(url(mismatched, 'mod'));
    expect(early.status).toBe(200);
    await proxy.composition.service.fetchBehindEarlyAnswer(mismatched.module, mismatched.version);
    const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
    expect(metrics).toMatch(/^modproxy_go_mod_mismatches_total\{found="zip"\} 1$/m);
    const warned = lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line['found'] === 'zip');
    expect(warned).toEqual([
      expect.objectContaining({ module: mismatched.module, version: mismatched.version, level: 'warn' }),
    ]);
    expect(await storage.exists(mismatched.module, mismatched.version)).toBe(false);
    const zip = await fetch(url(mismatched, 'zip'));
    expect([zip.status, zip.headers.get('content-type')]).toEqual([502, 'text/plain; charset=utf-8']);
  });
});
