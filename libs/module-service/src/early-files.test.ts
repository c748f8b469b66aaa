import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { errors } from '@modproxy/errors';
import { escapePath } from '@modproxy/gomod';
import { MemoryStorage } from '@modproxy/storage';
import { readAll } from '@modproxy/storage/compliance';
import {
  buildZip,
  createTempDir,
  PausingGoproxy,
  removeDir,
  writeLargeModule,
  type LargeModule,
} from '@modproxy/testing';
import { createUpstreamFromList, type Upstream } from '@modproxy/upstream';
import { UpstreamVersions } from '@modproxy/versions';
import { ModuleService } from './module-service';

const MiB = 1024 * 1024;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * `.mod` and `.info` before the zip, against a real upstream GOPROXY on loopback that can hold a
 * large zip halfway (PausingGoproxy) and counts what it is asked.
 */
describe('early .info and .mod: answered from upstream alone, the zip fetched behind them', () => {
  let dir: string;
  let goproxy: PausingGoproxy;
  let upstream: Upstream;
  let storage: MemoryStorage;
  let large: LargeModule;
  const mismatches: string[] = [];
  const failures: string[] = [];

  beforeEach(async () => {
    dir = await createTempDir('early-files-');
    large = await writeLargeModule(dir, { module: 'example.test/Early/large', zipBytes: 8 * MiB });
    goproxy = await PausingGoproxy.start(dir);
    upstream = createUpstreamFromList(goproxy.url, { direct: {}, goproxy: { tempDir: dir } });
    storage = new MemoryStorage();
    mismatches.length = 0;
    failures.length = 0;
  });

  afterEach(async () => {
    await upstream.close?.();
    await goproxy.stop();
    await removeDir(dir);
  });

  function service(over: Upstream = upstream): ModuleService {
    return new ModuleService({
      storage,
      upstream: over,
      versions: new UpstreamVersions({ storage }),
      events: {
        goModMismatch: (module, version, found) => mismatches.push(`${module}@${version} ${found}`),
        fetchFailed: (module, version, error) => failures.push(`${module}@${version} ${error.kind}`),
      },
    });
  }

  const at = (module: LargeModule, file: string) =>
    `/${escapePath(module.module)}/@v/${module.version}.${file}`;

  it('answers a cold .mod while the zip is still held by upstream, then stores the version behind it', async () => {
    const modules = service();
    const zip = goproxy.pauseAfter(at(large, 'zip'), 64 * 1024);
    let fetched = false;
    let unverified = false;
    const mod = await modules.mod(large.module, large.version, {
      onFetched: () => (fetched = true),
      onUnverified: () => (unverified = true),
    });
    expect(mod.equals(large.mod)).toBe(true);
    expect([fetched, unverified]).toEqual([true, true]);
    // The zip is on its way, held halfway by upstream: nothing is stored yet.
    await zip.reached;
    expect(await storage.exists(large.module, large.version)).toBe(false);
    // Asked again meanwhile: the same bytes, and upstream is not asked again.
    expect((await modules.mod(large.module, large.version)).equals(large.mod)).toBe(true);
    expect(goproxy.requestCount(at(large, 'mod'))).toBe(2);
    zip.resume();
    await modules.fetchBehindEarlyAnswer(large.module, large.version);
    expect(await storage.exists(large.module, large.version)).toBe(true);
    expect((await storage.mod(large.module, large.version)).equals(mod)).toBe(true);
    expect(sha256(await readAll((await storage.zip(large.module, large.version)).stream))).toBe(
      large.zipSha256,
    );
    // One early .mod, then the fetch: .info, .mod and the zip, each once.
    expect(['info', 'mod', 'zip'].map((file) => goproxy.requestCount(at(large, file)))).toEqual([1, 2, 1]);
    // Stored now: answered from storage, verified.
    let unverifiedNow = false;
    await modules.mod(large.module, large.version, { onUnverified: () => (unverifiedNow = true) });
    expect(unverifiedNow).toBe(false);
    expect([mismatches, failures]).toEqual([[], []]);
  });

  it('answers a cold .info at once and asks for the .mod behind it, which a later .mod request gets', async () => {
    const modules = service();
    const zip = goproxy.pauseAfter(at(large, 'zip'), 64 * 1024);
    const { info, immutable } = await modules.info(large.module, large.version);
    expect([JSON.parse(info.toString()).Version, immutable]).toEqual([large.version, true]);
    await zip.reached;
    // The .mod the zip must match was asked for behind the .info, once; this answer is those bytes.
    expect((await modules.mod(large.module, large.version)).equals(large.mod)).toBe(true);
    expect(goproxy.requestCount(at(large, 'mod'))).toBe(2);
    zip.resume();
    await modules.fetchBehindEarlyAnswer(large.module, large.version);
    expect(await storage.exists(large.module, large.version)).toBe(true);
  });

  it('refuses, counts and never stores a zip whose go.mod is not the go.mod served', async () => {
    // Upstream's .mod says one thing and its zip another.
    const served = Buffer.from(`module ${large.module}\n\ngo 1.22\n// another go.mod\n`);
    await writeFile(join(dir, ...escapePath(large.module).split('/'), '@v', `${large.version}.mod`), served);
    const modules = service();
    expect((await modules.mod(large.module, large.version)).equals(served)).toBe(true);
    await modules.fetchBehindEarlyAnswer(large.module, large.version);
    expect(mismatches).toEqual([`${large.module}@${large.version} zip`]);
    expect(failures).toEqual([`${large.module}@${large.version} bad-gateway`]);
    expect(await storage.exists(large.module, large.version)).toBe(false);
    // The zip itself is refused with the reason.
    await expect(modules.zip(large.module, large.version)).rejects.toMatchObject({ kind: 'bad-gateway' });
  });

  it('refuses a zip whose go.mod is not the one served even when upstream changed both meanwhile', async () => {
    const modules = service();
    // The fetch behind the answer waits on its .info while upstream republishes the version.
    const info = goproxy.pauseAfter(at(large, 'info'), 1);
    expect((await modules.mod(large.module, large.version)).equals(large.mod)).toBe(true);
    await info.reached;
    const other = Buffer.from(`module ${large.module}\n\ngo 1.23\n`);
    const prefix = `${large.module}@${large.version}/`;
    const republished = await buildZip([
      { name: `${prefix}go.mod`, data: other },
      { name: `${prefix}early.go`, data: 'package early\n' },
    ]);
    const files = join(dir, ...escapePath(large.module).split('/'), '@v');
    await writeFile(join(files, `${large.version}.mod`), other);
    await writeFile(join(files, `${large.version}.zip`), republished);
    info.resume();
    await modules.fetchBehindEarlyAnswer(large.module, large.version);
    // Self-consistent, but not what clients were given: refused.
    expect(mismatches).toEqual([`${large.module}@${large.version} zip`]);
    expect(await storage.exists(large.module, large.version)).toBe(false);
  });

  it('never serves an upstream .mod that is no go.mod (a 200 page), and says bad-gateway', async () => {
    // What a static server or a portal answers with 200, here echoing what it was sent.
    const page = '<!DOCTYPE HTML><html><body><pre>Authorization: Bearer echoed-secret</pre></body></html>\n';
    await writeFile(join(dir, ...escapePath(large.module).split('/'), '@v', `${large.version}.mod`), page);
    const modules = service();
    let failure: unknown;
    const answer = await modules.mod(large.module, large.version).catch((error: unknown) => {
      failure = error;
      return undefined;
    });
    expect(answer?.toString()).toBeUndefined();
    expect(failure).toMatchObject({ kind: 'bad-gateway' });
    expect(String(failure)).not.toContain('echoed-secret');
  });

  it('keeps the whole fetch first when upstream cannot give a file alone (direct)', async () => {
    const whole: Upstream = {
      name: 'whole versions only',
      list: (module, options) => upstream.list(module, options),
      latest: (module, options) => upstream.latest(module, options),
      info: (module, query, options) => upstream.info(module, query, options),
      fetch: (module, version, options) => upstream.fetch(module, version, options),
    };
    const modules = service(whole);
    let unverified = false;
    const mod = await modules.mod(large.module, large.version, { onUnverified: () => (unverified = true) });
    expect(mod.equals(large.mod)).toBe(true);
    expect(unverified).toBe(false);
    // Answered only once the whole version was fetched and stored.
    expect(await storage.exists(large.module, large.version)).toBe(true);
    expect(goproxy.requestCount(at(large, 'zip'))).toBe(1);
  });

  it('hands the whole version to the fetcher when upstream is busy with a file alone (429 Retry-After)', async () => {
    const busy: Upstream = {
      name: 'busy for files alone',
      list: (module, options) => upstream.list(module, options),
      latest: (module, options) => upstream.latest(module, options),
      info: (module, query, options) => upstream.info(module, query, options),
      fetch: (module, version, options) => upstream.fetch(module, version, options),
      versionFile: (module, version, file) =>
        Promise.reject(
          errors.badGateway(`upstream.${file}`, 'upstream failed: 429', {
            module,
            version,
            retryAfterSeconds: 30,
          }),
        ),
    };
    const modules = service(busy);
    let unverified = false;
    const mod = await modules.mod(large.module, large.version, { onUnverified: () => (unverified = true) });
    // Answered by the whole fetch, verified and stored, and no failure was reported.
    expect(mod.equals(large.mod)).toBe(true);
    expect(unverified).toBe(false);
    expect(await storage.exists(large.module, large.version)).toBe(true);
    expect(failures).toEqual([]);
  });
});
