import { access, mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJsonStream } from './export-fixtures';
import { createFixtureModules, type FixtureModules } from './fixture-modules';
import { runGo } from './go-env';
import { createGoWorkspace } from './go-workspace';
import { runCommand } from './run-command';
import { listZipEntries } from './zip-entries';

interface ListedModule {
  Path: string;
  Version: string;
  Versions?: string[];
  Time?: string;
}

interface DownloadedModule {
  Path: string;
  Version: string;
  Zip?: string;
  Info?: string;
  Error?: string;
}

describe('createFixtureModules', () => {
  let fixtures: FixtureModules;

  beforeAll(async () => {
    fixtures = await createFixtureModules();
  });

  afterAll(async () => {
    await fixtures?.close();
  });

  it('lists each fixture’s tagged versions and latest version through the go command in direct mode', async () => {
    const result = await runGo(
      ['list', '-m', '-json', '-versions', ...fixtures.all.map((module) => `${module.path}@latest`)],
      {
        cwd: fixtures.root,
        env: fixtures.env,
      },
    );
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    const listed = parseJsonStream(result.stdout) as ListedModule[];
    expect(listed.map((module) => [module.Path, module.Version, module.Versions ?? []])).toEqual(
      fixtures.all.map((module) => [module.path, module.latest, module.versions]),
    );
  });

  it('orders versions by semver, not as strings, and resolves latest to the highest release', () => {
    expect(fixtures.hello.versions).toEqual(['v1.0.0', 'v1.1.0', 'v1.2.0-pre', 'v1.10.0']);
    expect(fixtures.hello.latest).toBe('v1.10.0');
    expect(fixtures.legacy.latest).toBe('v3.0.0+incompatible');
    expect(fixtures.untagged.latest).toMatch(/^v0\.0\.0-\d{14}-[0-9a-f]{12}$/);
    expect(fixtures.mixedCase.escapedPath).toBe('example.test/!mixed!case.git');
  });

  it('downloads every known version, with the commit times as .info Time', async () => {
    const queries = fixtures.all.flatMap((module) =>
      Object.keys(module.byVersion).map((version) => `${module.path}@${version}`),
    );
    const result = await runGo(['mod', 'download', '-json', ...queries], {
      cwd: fixtures.root,
      env: fixtures.env,
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const downloads = parseJsonStream(result.stdout) as DownloadedModule[];
    expect(downloads.map((download) => `${download.Path}@${download.Version}`).sort()).toEqual(
      [...queries].sort(),
    );
    expect(downloads.filter((download) => download.Error !== undefined)).toEqual([]);
    for (const download of downloads) {
      const module = fixtures.all.find((candidate) => candidate.path === download.Path);
      const info = JSON.parse(await readFile(download.Info ?? '', 'utf8')) as {
        Version: string;
        Time: string;
      };
      expect(info.Time).toBe(module?.byVersion[download.Version]?.time.toISOString().replace('.000Z', 'Z'));
    }
  });

  it('resolves a commit hash after the last tag to the pseudo-version the fixture announces', async () => {
    const untagged = fixtures.hello.untagged;
    expect(untagged?.version).toMatch(/^v1\.10\.1-0\.\d{14}-[0-9a-f]{12}$/);
    const result = await runGo(
      ['mod', 'download', '-json', `${fixtures.hello.path}@${untagged?.commit.slice(0, 12) ?? ''}`],
      {
        cwd: fixtures.root,
        env: fixtures.env,
      },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    const [download] = parseJsonStream(result.stdout) as DownloadedModule[];
    expect(download?.Version).toBe(untagged?.version);
  });

  it('leaves the nested module out of its parent’s zip', async () => {
    const result = await runGo(
      ['mod', 'download', '-json', `${fixtures.nested.path}@v1.0.0`, `${fixtures.nestedSub.path}@v1.0.0`],
      { cwd: fixtures.root, env: fixtures.env },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    const [parent, sub] = parseJsonStream(result.stdout) as DownloadedModule[];
    const parentEntries = await listZipEntries(parent?.Zip ?? '');
    expect(parentEntries).toContain('example.test/nested.git@v1.0.0/nested.go');
    expect(parentEntries.filter((name) => name.includes('/sub/'))).toEqual([]);
    const subEntries = await listZipEntries(sub?.Zip ?? '');
    expect(subEntries.sort()).toEqual(
      ['README', 'go.mod', 'sub.go'].map((name) => `example.test/nested.git/sub@v1.0.0/${name}`),
    );
  });

  it('builds a program importing every fixture at its latest version', async () => {
    const workspace = await createGoWorkspace({
      env: fixtures.env,
      imports: fixtures.all.map((module) => ({ importPath: module.importPath, func: module.func })),
    });
    try {
      const get = await workspace.go(['get', ...fixtures.all.map((module) => `${module.path}@latest`)]);
      expect(get.exitCode, get.stderr).toBe(0);
      const build = await workspace.go(['build', '-o', 'program', '.']);
      expect(build.exitCode, build.stderr).toBe(0);
      const run = await runCommand(join(workspace.dir, 'program'), [], { env: {} });
      expect(run.stdout.trim().split('\n')).toEqual(
        fixtures.all.map((module) => module.byVersion[module.latest]?.returns),
      );
    } finally {
      await workspace.remove();
    }
  });

  it('pins a pseudo-version with go get <module>@<commit>', async () => {
    const workspace = await createGoWorkspace({
      env: fixtures.env,
      imports: [{ importPath: fixtures.hello.importPath, func: 'Hello' }],
    });
    try {
      const get = await workspace.go([
        'get',
        `${fixtures.hello.path}@${fixtures.hello.untagged?.commit ?? ''}`,
      ]);
      expect(get.exitCode, get.stderr).toBe(0);
      const listed = await workspace.go(['list', '-m', '-json', fixtures.hello.path]);
      expect((JSON.parse(listed.stdout) as ListedModule).Version).toBe(fixtures.hello.untagged?.version);
      const run = await workspace.go(['run', '.']);
      expect(run.stdout.trim()).toBe('hello untagged');
    } finally {
      await workspace.remove();
    }
  });

  it('fails without any network for a module that has no repository', async () => {
    const result = await runGo(['mod', 'download', '-json', `${fixtures.missingModule}@v1.0.0`], {
      cwd: fixtures.root,
      env: fixtures.env,
    });
    expect(result.exitCode).not.toBe(0);
    const error = (parseJsonStream(result.stdout)[0] as DownloadedModule).Error;
    // Decided from the local git configuration alone: no name lookup, no connection attempt.
    expect(error).toMatch(/no secure protocol found for repository/);
    expect(`${error}\n${result.stderr}`).not.toMatch(/lookup|dial tcp|i\/o timeout/);
  });

  it('removes everything on close', async () => {
    const other = await createFixtureModules({ parentDir: await mkdtemp(join(fixtures.root, 'close-')) });
    await other.close();
    await other.close();
    await expect(access(other.root)).rejects.toThrow();
  });
});
