import { readdir } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isModuleError, type ErrorKind } from '@modproxy/errors';
import { sortVersions } from '@modproxy/gomod';
import {
  createFixtureModules,
  createTempDir,
  listZipEntries,
  type FixtureModule,
  type FixtureModules,
} from '@modproxy/testing';
import { DirectUpstream } from './direct-upstream';

interface Info {
  Version: string;
  Time: string;
  Origin?: { VCS?: string; Hash?: string; Ref?: string };
}

const parseInfo = (bytes: Buffer): Info => JSON.parse(bytes.toString('utf8')) as Info;
const infoTime = (date: Date): string => date.toISOString().replace('.000Z', 'Z');

async function rejectionKind(promise: Promise<unknown>): Promise<ErrorKind | 'resolved' | 'foreign'> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return isModuleError(error) ? error.kind : 'foreign';
  }
}

describe('DirectUpstream against git fixtures', () => {
  let fixtures: FixtureModules;
  let workDir: string;
  let upstream: DirectUpstream;

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    workDir = await createTempDir('direct-work-', fixtures.root);
    upstream = new DirectUpstream({ env: fixtures.directEnv, workDir });
  });

  afterAll(async () => {
    await fixtures?.close();
  });

  afterEach(async () => {
    // Every call cleans up after itself; only an unreleased fetch may leave a directory.
    expect(await readdir(workDir)).toEqual([]);
  });

  it('lists the tagged versions of every fixture', async () => {
    for (const module of fixtures.all) {
      expect(sortVersions(await upstream.list(module.path)), module.path).toEqual(module.versions);
    }
  });

  it('answers latest with the .info of the version the go command resolves @latest to', async () => {
    for (const module of fixtures.all) {
      const info = parseInfo(await upstream.latest(module.path));
      const expected = module.byVersion[module.latest];
      expect([info.Version, info.Time, info.Origin?.Hash], module.path).toEqual([
        module.latest,
        infoTime(expected?.time ?? new Date(0)),
        expected?.commit,
      ]);
    }
  });

  it('resolves version queries (tag, semver prefix, commit hash, branch) to canonical versions', async () => {
    const hello = fixtures.hello;
    const untagged = hello.untagged;
    const queries: Array<[FixtureModule, string, string | undefined]> = [
      [hello, 'v1.1.0', 'v1.1.0'],
      [hello, 'v1.2.0-pre', 'v1.2.0-pre'],
      [hello, 'v1.1', 'v1.1.0'],
      [hello, untagged?.commit ?? '', untagged?.version],
      [hello, untagged?.commit.slice(0, 12) ?? '', untagged?.version],
      [hello, 'main', untagged?.version],
      [hello, hello.byVersion['v1.0.0']?.commit ?? '', 'v1.0.0'],
      [fixtures.legacy, 'v3.0.0', 'v3.0.0+incompatible'],
      [fixtures.majorV2, 'v2.0.0', 'v2.0.0'],
      [fixtures.mixedCase, 'v1.0.0', 'v1.0.0'],
      [fixtures.nestedSub, 'v1.0.0', 'v1.0.0'],
      [fixtures.untagged, fixtures.untagged.untagged?.commit ?? '', fixtures.untagged.latest],
    ];
    for (const [module, query, version] of queries) {
      const info = parseInfo(await upstream.info(module.path, query));
      expect(info.Version, `${module.path}@${query}`).toBe(version);
      expect(info.Time).toBe(infoTime(module.byVersion[info.Version]?.time ?? new Date(0)));
    }
  });

  it('fetches every version of every fixture: info, go.mod and zip', async () => {
    for (const module of fixtures.all) {
      for (const version of Object.keys(module.byVersion)) {
        const fetched = await upstream.fetch(module.path, version);
        try {
          expect([fetched.module, fetched.version, parseInfo(fetched.info).Version]).toEqual([
            module.path,
            version,
            version,
          ]);
          expect(parseInfo(fetched.info).Origin?.Hash).toBe(module.byVersion[version]?.commit);
          expect(fetched.mod.toString('utf8')).toMatch(
            new RegExp(`^module ${module.path.replace(/\./g, '\\.')}\\n`),
          );
          const entries = await listZipEntries(fetched.zipPath);
          const prefix = `${module.path}@${version}/`;
          expect(entries.every((name) => name.startsWith(prefix))).toBe(true);
          expect(entries.some((name) => name.endsWith('.go'))).toBe(true);
          let streamed = 0;
          for await (const chunk of fetched.openZip()) streamed += (chunk as Buffer).length;
          expect(streamed).toBe(fetched.zipSize);
        } finally {
          await fetched.release();
        }
      }
    }
  });

  it('leaves the nested module out of the parent zip', async () => {
    const fetched = await upstream.fetch(fixtures.nested.path, 'v1.0.0');
    try {
      const entries = await listZipEntries(fetched.zipPath);
      expect(entries).toContain('example.test/nested.git@v1.0.0/nested.go');
      expect(entries.filter((name) => name.includes('/sub/'))).toEqual([]);
    } finally {
      await fetched.release();
    }
  });

  it('fetches a pseudo-version and synthesizes go.mod for a module without one', async () => {
    const pseudo = await upstream.fetch(fixtures.hello.path, fixtures.hello.untagged?.version ?? '');
    const legacy = await upstream.fetch(fixtures.legacy.path, 'v3.0.0+incompatible');
    try {
      expect(parseInfo(pseudo.info).Time).toBe(infoTime(fixtures.hello.untagged?.time ?? new Date(0)));
      expect(legacy.mod.toString('utf8')).toBe('module example.test/legacy.git\n');
    } finally {
      await Promise.all([pseudo.release(), legacy.release()]);
    }
  });

  it('keeps the fetched files until release(), which removes them and is idempotent', async () => {
    const fetched = await upstream.fetch(fixtures.mixedCase.path, 'v1.1.0');
    expect(await readdir(workDir)).toHaveLength(1);
    await fetched.release();
    await fetched.release();
    expect(await readdir(workDir)).toEqual([]);
    expect(() => fetched.openZip()).toThrow(/released/);
  });

  it('answers not-found for a missing module and a missing version', async () => {
    const missing = fixtures.missingModule;
    expect(await rejectionKind(upstream.list(missing))).toBe('not-found');
    expect(await rejectionKind(upstream.latest(missing))).toBe('not-found');
    expect(await rejectionKind(upstream.info(missing, 'v1.0.0'))).toBe('not-found');
    expect(await rejectionKind(upstream.fetch(missing, 'v1.0.0'))).toBe('not-found');
    expect(await rejectionKind(upstream.fetch(fixtures.hello.path, 'v9.9.9'))).toBe('not-found');
    expect(await rejectionKind(upstream.info(fixtures.hello.path, 'no-such-branch'))).toBe('not-found');
    expect(await rejectionKind(upstream.latest(`${fixtures.hello.path}/v2`))).toBe('not-found');
    // The v2 tags of a module with a go.mod belong to its /v2 module only.
    expect(await rejectionKind(upstream.fetch(fixtures.major.path, 'v2.0.0'))).toBe('not-found');
    expect(await rejectionKind(upstream.fetch(fixtures.hello.path, 'v1.0.0+incompatible'))).toBe('not-found');
  });

  it('refuses malformed input before running the go command', async () => {
    expect(await rejectionKind(upstream.fetch(fixtures.hello.path, 'v1.0'))).toBe('invalid-argument');
    expect(await rejectionKind(upstream.list('-modfile=/etc/passwd'))).toBe('invalid-argument');
    expect(await rejectionKind(upstream.info(fixtures.hello.path, '-x'))).toBe('invalid-argument');
  });

  it('ignores the server’s own GOPROXY, GOFLAGS and GOPATH', async () => {
    const confused = new DirectUpstream({
      env: fixtures.directEnv,
      workDir,
      baseEnv: {
        ...process.env,
        GOPROXY: 'http://127.0.0.1:9',
        GOFLAGS: '-no-such-flag',
        GOPATH: '/nonexistent/gopath',
        GONOPROXY: 'none',
      },
    });
    expect(sortVersions(await confused.list(fixtures.hello.path))).toEqual(fixtures.hello.versions);
    const fetched = await confused.fetch(fixtures.hello.path, 'v1.0.0');
    await fetched.release();
  });

  it('is cancelled by the caller’s signal', async () => {
    expect(await rejectionKind(upstream.list(fixtures.hello.path, { signal: AbortSignal.abort() }))).toBe(
      'cancelled',
    );
  });

  it('answers timeout when the go command outlives timeoutMs', async () => {
    const impatient = new DirectUpstream({ env: fixtures.directEnv, workDir, timeoutMs: 1 });
    expect(await rejectionKind(impatient.fetch(fixtures.hello.path, 'v1.10.0'))).toBe('timeout');
  });
});
