import { chmod, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFixtureModules,
  createTempDir,
  type AppProcess,
  type FixtureModules,
  removeDir,
  startAppProcess,
} from '@modproxy/testing';
import { testWorkersEnv } from './test-support/test-proxy';

const root = join(__dirname, '..', '..', '..');

/** What the server's environment holds that must never reach the go command (or git, ssh…). */
const SECRETS: Record<string, string> = {
  STORAGE_TOKEN: 'storage-token-s3cret-value-0001',
  LATHENS_GRPC_TOKEN: 'lathens-token-s3cret-value-0002',
  GRPC_TOKEN: 'grpc-token-s3cret-value-0003',
  UPSTREAM_AUTHORIZATION: 'Bearer upstream-s3cret-value-0004',
  REDIS_URL: 'redis://:redis-pw-s3cret-0005@127.0.0.1:6379',
  // (Not QUEUE_REDIS_URL: the proxy reads it, and would hand its misses to a queue.)
  DATABASE_URL: 'postgres://app:pg-pw-s3cret-0006@127.0.0.1:5432/app',
  MONGODB_URI: 'mongodb://admin:mongo-pw-s3cret-0007@127.0.0.1:27017',
  AWS_SECRET_ACCESS_KEY: 'aws-s3cret-value-0008',
  GOOGLE_APPLICATION_CREDENTIALS: '/run/secrets/gcp-s3cret-0009.json',
  GIT_TOKEN: 'git-token-s3cret-0010',
  GITHUB_TOKEN: 'github-token-s3cret-0011',
};

/**
 * The proxy as a real process whose environment is full of secrets, with GO_BINARY a wrapper
 * that records the environment each go command gets and then runs the real go command.
 */
describe('the go command’s environment (proxy process)', () => {
  let fixtures: FixtureModules;
  let work: string;
  let recordings: string;
  let proxy: AppProcess | undefined;
  let url: string;

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    work = await createTempDir('proxy-go-env-', fixtures.root);
    recordings = await createTempDir('recorded-', work);
    // A bundle of our own (not dist/, which other test runs rebuild while this one runs).
    const { bundle } = (await import(join(root, 'scripts', 'build-app.mjs'))) as {
      bundle: (entry: string, outfile: string) => Promise<string>;
    };
    const main = await bundle(
      join(root, 'apps', 'proxy', 'src', 'main.ts'),
      join(root, 'tmp', 'test-bundles', `proxy-go-env-${process.pid}`, 'main.js'),
    );
    const goBinary = join(work, 'go-recording');
    // The path is written into the script: the wrapper gets only what the go command gets.
    await writeFile(goBinary, `#!/bin/sh\nenv -0 > ${recordings}/env-$$\nexec go "$@"\n`);
    await chmod(goBinary, 0o755);
    proxy = await startAppProcess(main, {
      cwd: work,
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        HOME: fixtures.env['HOME'] ?? work,
        TMPDIR: tmpdir(),
        // The fixture repositories through git config, and the closed-port HTTPS proxy: all of it
        // must reach the go command from the server's environment for the fetch to work.
        ...fixtures.directEnv,
        PORT: '0',
        STORAGE_DIR: join(work, 'storage'),
        GO_WORK_DIR: work,
        UPSTREAM: 'direct',
        GO_BINARY: goBinary,
        ...testWorkersEnv(),
        LOG_LEVEL: 'warn',
        ...SECRETS,
      },
      ready: /export GOPROXY=(\S+)/,
    });
    url = proxy.match[1] ?? '';
  });

  afterAll(async () => {
    await proxy?.stop();
    await rm(join(root, 'tmp', 'test-bundles', `proxy-go-env-${process.pid}`), {
      recursive: true,
      force: true,
    });
    await removeDir(work);
    await fixtures?.close();
  });

  it('fetches through the allow-listed environment and never hands the go command a secret', async () => {
    const zip = await fetch(`${url}/${fixtures.hello.escapedPath}/@v/v1.0.0.zip`);
    expect(zip.status).toBe(200);
    expect((await zip.arrayBuffer()).byteLength).toBeGreaterThan(0);
    const list = await fetch(`${url}/${fixtures.mixedCase.escapedPath}/@v/list`);
    expect([list.status, await list.text()]).toEqual([
      200,
      fixtures.mixedCase.versions.map((version) => `${version}\n`).join(''),
    ]);

    const files = await readdir(recordings);
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const file of files) {
      const dump = await readFile(join(recordings, file), 'utf8');
      const env = Object.fromEntries(
        dump
          .split('\0')
          .filter((entry) => entry !== '')
          .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
      );
      for (const name of Object.keys(SECRETS)) expect(env, `${file}: ${name}`).not.toHaveProperty(name);
      for (const value of Object.values(SECRETS)) expect(dump, file).not.toContain(value);
      expect(env).toMatchObject({
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        GIT_CONFIG_GLOBAL: fixtures.gitConfigPath,
        HTTPS_PROXY: fixtures.directEnv['HTTPS_PROXY'],
        NO_PROXY: fixtures.directEnv['NO_PROXY'],
        GONOSUMDB: fixtures.directEnv['GONOSUMDB'],
        GOPROXY: 'direct',
      });
    }
  });
});
