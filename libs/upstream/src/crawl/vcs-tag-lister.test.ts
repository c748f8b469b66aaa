import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { sortVersions } from '@modproxy/gomod';
import {
  createFixtureModules,
  createGitRecorder,
  createTempDir,
  removeDir,
  type FixtureModules,
  type GitRecorder,
} from '@modproxy/testing';
import { GitCommand, type GitCommandOptions } from './git-command';
import { VcsTagLister } from './vcs-tag-lister';

let fixtures: FixtureModules;
let dir: string;
let recorder: GitRecorder;

beforeAll(async () => {
  fixtures = await createFixtureModules();
  dir = await createTempDir('modproxy-vcs-lister-');
  recorder = await createGitRecorder(dir);
});

afterAll(async () => {
  await fixtures?.close();
  if (dir) await removeDir(dir);
});

function lister(options: GitCommandOptions = {}): VcsTagLister {
  return new VcsTagLister({
    git: new GitCommand({ gitBinary: recorder.binary, env: fixtures.directEnv, ...options }),
  });
}

async function script(name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

describe('VcsTagLister', () => {
  it("lists every fixture module's tagged versions with git ls-remote, never a clone", async () => {
    const vcs = lister();
    for (const fixture of fixtures.all) {
      const listing = await vcs.list(fixture.path);
      const go = fixture.versions.filter((version) => !version.endsWith('+incompatible'));
      // What the go command lists, and every +incompatible version of it among the candidates.
      expect(sortVersions(listing.versions), fixture.path).toEqual(sortVersions(go));
      for (const version of fixture.versions)
        expect([...listing.versions, ...listing.unconfirmed]).toContain(version);
      expect(listing.location.url).toBe(fixture.repoUrl);
    }
    // +incompatible depends on go.mod files, which tags do not show: `legacy` (no go.mod) has
    // v3.0.0+incompatible; `major`'s v2 tags belong to its /v2 module, yet look the same.
    expect((await vcs.list(fixtures.legacy.path)).unconfirmed).toEqual(['v3.0.0+incompatible']);
    expect(sortVersions((await vcs.list(fixtures.major.path)).unconfirmed)).toEqual([
      'v2.0.0+incompatible',
      'v2.1.0+incompatible',
    ]);
    const commands = await recorder.commands();
    expect(commands.length).toBeGreaterThanOrEqual(fixtures.all.length);
    expect(commands.every((args) => args[0] === 'ls-remote' && args.includes('--tags'))).toBe(true);
  });

  it('sees a tag pushed after the last listing', async () => {
    const vcs = lister();
    expect((await vcs.list(fixtures.hello.path)).versions).not.toContain('v1.11.0');
    await fixtures.hello.repo.tag('v1.11.0');
    expect((await vcs.list(fixtures.hello.path)).versions).toContain('v1.11.0');
  });

  it('answers not-found for a repository that is not there', async () => {
    const error = await lister()
      .list(fixtures.missingModule)
      .catch((thrown: unknown) => thrown);
    expect(isModuleError(error, 'not-found')).toBe(true);
  });

  it("gives git the allow-listed environment, never the server's secrets, and no prompts", async () => {
    const envFile = join(dir, 'git-env.txt');
    const git = await script('env-git', `env > '${envFile}'\nexec git "$@"`);
    const vcs = lister({
      gitBinary: git,
      baseEnv: {
        PATH: process.env['PATH'],
        HOME: fixtures.env['HOME'],
        STORAGE_TOKEN: 'storage-secret-token-123',
        LATHENS_GRPC_TOKEN: 'lathens-secret-token-456',
        UPSTREAM_AUTHORIZATION: 'Bearer upstream-secret',
        REDIS_URL: 'redis://:redis-secret@127.0.0.1:6379',
        GIT_TOKEN: 'git-token-secret',
        GIT_TERMINAL_PROMPT: '1',
      },
    });
    await vcs.list(fixtures.hello.path);
    const env = await readFile(envFile, 'utf8');
    for (const secret of [
      'storage-secret',
      'lathens-secret',
      'upstream-secret',
      'redis-secret',
      'git-token-secret',
    ])
      expect(env).not.toContain(secret);
    expect(env).toMatch(/^GIT_TERMINAL_PROMPT=0$/m);
    expect(env).toMatch(/^GIT_CONFIG_GLOBAL=/m);
    expect(env).toMatch(/^PATH=/m);
  });

  it('kills git and its children at the deadline', async () => {
    const pidFile = join(dir, 'stuck-git.pid');
    const stuck = await script('stuck-git', `echo $$ > '${pidFile}'\nexec sleep 600`);
    const error = await lister({ gitBinary: stuck, timeoutMs: 300 })
      .list(fixtures.hello.path)
      .catch((thrown: unknown) => thrown);
    expect(isModuleError(error, 'timeout')).toBe(true);
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  });

  it('stops reading a git that prints without end', async () => {
    const chatty = await script(
      'chatty-git',
      `exec yes 0000000000000000000000000000000000000000\trefs/tags/v1.0.0`,
    );
    const error = await lister({ gitBinary: chatty, maxOutputBytes: 64 * 1024 })
      .list(fixtures.hello.path)
      .catch((thrown: unknown) => thrown);
    expect(isModuleError(error, 'bad-gateway')).toBe(true);
    expect((error as Error).message).toMatch(/printed more than 65536 bytes/);
  });

  it('stops when the caller gives up', async () => {
    const stuck = await script('slow-git', 'exec sleep 600');
    const controller = new AbortController();
    const listing = lister({ gitBinary: stuck }).list(fixtures.hello.path, { signal: controller.signal });
    controller.abort();
    const error = await listing.catch((thrown: unknown) => thrown);
    expect(isModuleError(error, 'cancelled')).toBe(true);
  });
});
