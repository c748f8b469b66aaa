import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matchPrefixPatterns } from '@modproxy/gomod';
import { createFixtureModules, createTempDir, runGo, type FixtureModules } from '@modproxy/testing';

/**
 * The module filter's matcher against the go command's own: with GOPROXY=off and GONOPROXY set
 * to a glob list, the go command goes direct (to the fixture repositories) exactly for the
 * modules the list matches, and refuses the others with "disabled by GOPROXY=off".
 */
describe('matchPrefixPatterns agrees with the go command (GONOPROXY)', () => {
  let fixtures: FixtureModules;
  let dir: string;

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    dir = await createTempDir('prefix-patterns-go-', fixtures.root);
  });

  afterAll(async () => {
    await fixtures?.close();
  });

  async function goesDirect(globs: string, module: string, version: string): Promise<boolean> {
    // A module cache of its own, so that no answer comes from an earlier run's download.
    const gopath = await createTempDir('gopath-', dir);
    const result = await runGo(['list', '-m', '-json', `${module}@${version}`], {
      cwd: dir,
      env: {
        ...fixtures.env,
        GOPATH: gopath,
        GOMODCACHE: join(gopath, 'pkg', 'mod'),
        GOPROXY: 'off',
        GONOPROXY: globs,
      },
    });
    if (result.exitCode === 0) return true;
    expect(result.stderr, `${globs} ${module}`).toContain('disabled by GOPROXY=off');
    return false;
  }

  it.each([
    ['example.test', 'hello', true],
    ['example.test/', 'hello', true],
    ['*.test', 'hello', true],
    ['example.*', 'hello', true],
    ['exampl?.test', 'hello', true],
    ['example.test/hello.git', 'hello', true],
    ['example.test/hel*', 'hello', true],
    ['example.test/hel', 'hello', false],
    ['example.test/[a-h]ello.git', 'hello', true],
    ['example.test/[^h]ello.git', 'hello', false],
    ['*/*', 'hello', true],
    ['*/*/*', 'hello', false],
    ['example', 'hello', false],
    ['other.test,,example.test/major.git', 'majorV2', true],
    ['example.test/major.git/v2', 'majorV2', true],
    ['example.test/major.git/v3', 'majorV2', false],
    ['*/*/v2', 'majorV2', true],
    ['example.test/Mixed*', 'mixedCase', true],
    ['example.test/mixed*', 'mixedCase', false],
    ['[,example.test', 'hello', true],
  ] as const)('GONOPROXY=%s for the %s fixture: direct %s', async (globs, name, expected) => {
    const module = fixtures[name];
    const version = module.versions[0] ?? '';
    expect(matchPrefixPatterns(globs, module.path)).toBe(expected);
    expect(await goesDirect(globs, module.path, version)).toBe(expected);
  });
});
