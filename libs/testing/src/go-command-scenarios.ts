import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPseudoVersion } from '@modproxy/gomod';
import { createFixtureModules, type FixtureModule, type FixtureModules } from './fixture-modules';
import { parseJsonStream } from './export-fixtures';
import { runGo } from './go-env';
import { createGoWorkspace } from './go-workspace';
import { rawRequest } from './raw-request';
import { snapshotTree } from './snapshot-tree';
import { createTempDir, removeDir } from './temp-dir';

/** A proxy under test, however it is deployed (in-process, processes, over gRPC). */
export interface ProxyDeployment {
  /** The GOPROXY URL. */
  url: string;
  /**
   * What the proxy has stored, in a form that changes when anything is written (file names and
   * sizes, catalog entries): bad requests must leave it unchanged.
   */
  snapshot(): Promise<string[]>;
  /**
   * Every directory the deployment's processes may write to (their storage, temp and working
   * directories): bad requests must leave all of them, and the fixtures, unchanged.
   */
  sandbox?: string[];
  stop(): Promise<void>;
}

interface Download {
  Path: string;
  Version: string;
  Sum?: string;
  GoModSum?: string;
  Error?: string;
}

/**
 * What a Go developer does through a proxy, with the real go command against the fixture git
 * repositories: download and compare hashes with a direct download, list versions, go get
 * @latest and @<commit>, build a program that imports every kind of fixture, exact protocol
 * formats, bad requests, and the same build again with the upstream gone. `deploy` must make
 * the proxy fetch `direct` with `fixtures.directEnv` in the go command's environment.
 */
export function describeGoCommandScenarios(
  name: string,
  deploy: (fixtures: FixtureModules) => Promise<ProxyDeployment>,
): void {
  describe(`the go command through the proxy (${name})`, () => {
    let fixtures: FixtureModules;
    let proxy: ProxyDeployment;
    const cleanup: Array<() => Promise<void>> = [];

    /** A go environment that can reach modules only through our proxy. */
    async function clientEnv(): Promise<Record<string, string>> {
      const gopath = await createTempDir('proxy-e2e-client-');
      cleanup.push(() => removeDir(gopath));
      // The fixtures' hermetic environment (no checksum database, local toolchain), minus the
      // git config that makes the repositories reachable: modules come only through the proxy.
      const { GIT_CONFIG_GLOBAL: _unreachable, ...env } = fixtures.env;
      return { ...env, GOPROXY: proxy.url, GOPATH: gopath, GOMODCACHE: join(gopath, 'pkg', 'mod') };
    }

    const pinned = (fixture: FixtureModule, version: string) => `${fixture.path}@${version}`;

    beforeAll(async () => {
      fixtures = await createFixtureModules();
      proxy = await deploy(fixtures);
    });

    afterAll(async () => {
      await proxy?.stop();
      for (const step of cleanup) await step();
      await fixtures?.close();
    });

    it('serves zips and go.mod files that hash exactly as the go command’s own direct download', async () => {
      const queries = [
        pinned(fixtures.hello, 'v1.1.0'),
        pinned(fixtures.hello, 'v1.2.0-pre'),
        pinned(fixtures.majorV2, 'v2.1.0'),
        pinned(fixtures.mixedCase, fixtures.mixedCase.latest),
        pinned(fixtures.legacy, 'v3.0.0+incompatible'),
        pinned(fixtures.nested, fixtures.nested.latest),
        pinned(fixtures.nestedSub, fixtures.nestedSub.latest),
      ];
      const direct = await runGo(['mod', 'download', '-json', ...queries], {
        cwd: fixtures.root,
        env: fixtures.env,
      });
      expect(direct.exitCode, direct.stderr).toBe(0);
      const viaProxy = await runGo(['mod', 'download', '-json', ...queries], {
        cwd: fixtures.root,
        env: await clientEnv(),
      });
      expect(viaProxy.exitCode, viaProxy.stderr).toBe(0);
      const sums = (text: string) =>
        (parseJsonStream(text) as Download[]).map(({ Path, Version, Sum, GoModSum, Error }) => ({
          Path,
          Version,
          Sum,
          GoModSum,
          Error,
        }));
      const expected = sums(direct.stdout);
      expect(expected).toHaveLength(queries.length);
      for (const entry of expected) expect(entry.Sum).toMatch(/^h1:/);
      expect(sums(viaProxy.stdout)).toEqual(expected);
    });

    it('lists tagged versions in semver order, the way go list -m -versions shows them', async () => {
      const workspace = await createGoWorkspace({ env: await clientEnv() });
      cleanup.push(() => workspace.remove());
      const result = await workspace.go([
        'list',
        '-m',
        '-versions',
        fixtures.hello.path,
        fixtures.majorV2.path,
        fixtures.legacy.path,
      ]);
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stdout.trim().split('\n')).toEqual([
        [fixtures.hello.path, ...fixtures.hello.versions].join(' '),
        [fixtures.majorV2.path, ...fixtures.majorV2.versions].join(' '),
        [fixtures.legacy.path, ...fixtures.legacy.versions].join(' '),
      ]);
      expect(fixtures.hello.versions).toEqual(['v1.0.0', 'v1.1.0', 'v1.2.0-pre', 'v1.10.0']);
    });

    it('resolves go get module@latest and module@<commit>', async () => {
      const workspace = await createGoWorkspace({ env: await clientEnv() });
      cleanup.push(() => workspace.remove());
      const latest = await workspace.go(['get', `${fixtures.hello.path}@latest`]);
      expect(latest.exitCode, latest.stderr).toBe(0);
      expect(latest.stderr).toContain(`${fixtures.hello.path} v1.10.0`);

      const untagged = fixtures.hello.untagged;
      expect(untagged).toBeDefined();
      const byCommit = await workspace.go(['get', `${fixtures.hello.path}@${untagged!.commit}`]);
      expect(byCommit.exitCode, byCommit.stderr).toBe(0);
      const listed = await workspace.go(['list', '-m', fixtures.hello.path]);
      expect(listed.stdout.trim()).toBe(`${fixtures.hello.path} ${untagged!.version}`);

      const onlyPseudo = await workspace.go(['get', `${fixtures.untagged.path}@latest`]);
      expect(onlyPseudo.exitCode, onlyPseudo.stderr).toBe(0);
      const listedPseudo = await workspace.go(['list', '-m', fixtures.untagged.path]);
      expect(listedPseudo.stdout.trim()).toBe(`${fixtures.untagged.path} ${fixtures.untagged.latest}`);
    });

    const program = () => [
      fixtures.hello,
      fixtures.majorV2,
      fixtures.mixedCase,
      fixtures.legacy,
      fixtures.nested,
      fixtures.nestedSub,
      fixtures.untagged,
    ];

    async function buildAndRun(env: Record<string, string>): Promise<string[]> {
      const modules = program();
      const workspace = await createGoWorkspace({
        env,
        imports: modules.map(({ importPath, func }) => ({ importPath, func })),
      });
      cleanup.push(() => workspace.remove());
      const get = await workspace.go([
        'get',
        ...modules.map((fixture) => `${fixture.path}@${fixture.latest}`),
      ]);
      expect(get.exitCode, get.stderr).toBe(0);
      const build = await workspace.go(['build', '-o', 'program', '.']);
      expect(build.exitCode, build.stderr).toBe(0);
      const run = await runGo(['run', '.'], { cwd: workspace.dir, env });
      expect(run.exitCode, run.stderr).toBe(0);
      return run.stdout.trim().split('\n');
    }

    it('builds a program importing every kind of fixture module', async () => {
      const output = await buildAndRun(await clientEnv());
      expect(output).toEqual(program().map((fixture) => fixture.byVersion[fixture.latest]?.returns));
    });

    it('answers with the exact formats and cache headers the go command expects', async () => {
      const base = `${proxy.url}/${fixtures.hello.escapedPath}/@v`;
      const list = await fetch(`${base}/list`);
      expect(list.status).toBe(200);
      expect(list.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(list.headers.get('cache-control')).toBe('public, max-age=60');
      // The untagged commit was fetched above and is stored, but pseudo-versions never appear in /list.
      expect(await list.text()).toBe(fixtures.hello.versions.map((version) => `${version}\n`).join(''));

      const info = await fetch(`${base}/v1.1.0.info`);
      expect(info.headers.get('content-type')).toMatch(/^application\/json/);
      expect(info.headers.get('cache-control')).toContain('immutable');
      const infoJson = (await info.json()) as { Version: string; Time: string };
      expect(infoJson.Version).toBe('v1.1.0');
      expect(new Date(infoJson.Time).getTime()).toBe(fixtures.hello.byVersion['v1.1.0']?.time.getTime());

      const mod = await fetch(`${base}/v1.1.0.mod`);
      expect(await mod.text()).toMatch(new RegExp(`^module ${fixtures.hello.path.replace(/\./g, '\\.')}\\n`));

      const zip = await fetch(`${base}/v1.1.0.zip`);
      expect(zip.headers.get('content-type')).toBe('application/zip');
      const body = Buffer.from(await zip.arrayBuffer());
      expect(Number(zip.headers.get('content-length'))).toBe(body.length);
      expect(body.subarray(0, 4).toString('latin1')).toBe('PK\u0003\u0004');

      const head = await fetch(`${base}/v1.1.0.zip`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(Number(head.headers.get('content-length'))).toBe(body.length);

      const latest = await fetch(`${proxy.url}/${fixtures.untagged.escapedPath}/@latest`);
      expect(((await latest.json()) as { Version: string }).Version).toBe(fixtures.untagged.latest);

      const missing = await fetch(`${proxy.url}/${fixtures.missingModule}/@v/list`);
      expect(missing.status).toBe(404);
      expect(missing.headers.get('content-type')).toMatch(/^text\/plain/);
      const missingVersion = await fetch(`${base}/v9.9.9.info`);
      expect(missingVersion.status).toBe(404);
    });

    it('rejects traversal and malformed requests with a 4xx text answer and writes nothing anywhere', async () => {
      // Everything the deployment and the go command may write to, directories included.
      const everything = async () => {
        const trees = await Promise.all(
          [fixtures.root, ...(proxy.sandbox ?? [])].map(async (dir) =>
            (await snapshotTree(dir, { directories: true })).map((entry) => `${dir}: ${entry}`),
          ),
        );
        return [...(await proxy.snapshot()), ...trees.flat()];
      };
      const before = await everything();
      const hello = fixtures.hello.escapedPath;
      // Sent as raw request lines: fetch and new URL would resolve `..` and `%2e%2e` first.
      const attempts = [
        `/${hello}/@v/..%2f..%2f..%2fetc%2fpasswd.info`,
        `/${hello}/@v/%2e%2e/%2e%2e/x.zip`,
        `/${hello}/@v/../../../../../../etc/passwd.info`,
        `/${hello}/@v/..%5c..%5cx.zip`,
        `/${hello}/../../../../../../tmp/x/@v/v1.0.0.zip`,
        `/../../../etc/passwd/@v/list`,
        `/%2e%2e/%2e%2e/etc/@v/list`,
        `/%2E%2E/%2e%2E/etc/@latest`,
        `/.%2e/.%2e/etc/@v/v1.0.0.mod`,
        `//etc/passwd/@v/list`,
        `/${hello}/@v/./v1.0.0.info`,
        `/example.test%2fhello.git/@v/list`,
        `/example.test/He!llo.git/@v/list`,
        `/example.test/!1ello.git/@v/list`,
        `/example.test/Hello.git/@v/list`,
        `/${hello}/@v/v1.0.0-!!.info`,
        `/${hello}/@v/V1.0.0.zip`,
        `/${hello}/@v/v1.0.0-.mod`,
        `/${hello}/@v/v1.2.zip`,
        `/${hello}/@v/${'9'.repeat(300)}.info`,
        `/${hello}/@v/v1.0.0;rm -rf.info`.replace(' ', '%20'),
        `/${'a'.repeat(2000)}.test/x/@v/list`,
        `/${hello}/@v/..info`,
      ];
      for (const path of attempts) {
        const response = await rawRequest(proxy.url, path);
        expect(response.status, path).toBeGreaterThanOrEqual(400);
        expect(response.status, path).toBeLessThan(500);
        expect(String(response.headers['content-type']), path).toMatch(/^text\/plain/);
        expect(response.body.length, path).toBeGreaterThan(0);
      }
      expect(await everything()).toEqual(before);
    });

    it('keeps serving everything from storage when the upstream is gone', async () => {
      const gone = `${fixtures.reposDir}.gone`;
      await rename(fixtures.reposDir, gone);
      try {
        const output = await buildAndRun(await clientEnv());
        expect(output).toEqual(program().map((fixture) => fixture.byVersion[fixture.latest]?.returns));
        // Whether from a cached answer or from storage, every stored version is listed, and
        // pseudo-versions never are.
        const list = await fetch(`${proxy.url}/${fixtures.hello.escapedPath}/@v/list`);
        expect(list.status).toBe(200);
        const listed = (await list.text()).trim().split('\n');
        expect(listed).toEqual(expect.arrayContaining(['v1.1.0', 'v1.2.0-pre', 'v1.10.0']));
        expect(listed.filter(isPseudoVersion)).toEqual([]);
        // Never fetched before the outage, so not stored: the client falls through.
        const missing = await fetch(`${proxy.url}/${fixtures.hello.escapedPath}/@v/v1.0.0.zip`);
        expect(missing.status).toBe(404);
      } finally {
        await rename(gone, fixtures.reposDir);
      }
    });
  });
}
