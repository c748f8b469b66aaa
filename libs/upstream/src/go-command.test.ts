import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isModuleError, type ErrorKind } from '@modproxy/errors';
import { createFixtureModules, createTempDir, type FixtureModules } from '@modproxy/testing';
import { DirectUpstream } from './direct-upstream';
import { GoCommand, goCommandError } from './go-command';

async function rejectionKind(promise: Promise<unknown>): Promise<ErrorKind | 'resolved' | 'foreign'> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return isModuleError(error) ? error.kind : 'foreign';
  }
}

/** True while a process with this pid runs (a zombie waiting to be reaped counts as dead). */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat !== undefined) return !/^\d+ \(.*\) Z/.test(stat);
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('GoCommand process handling', () => {
  let fixtures: FixtureModules;
  let scripts: string;
  let workDir: string;

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    scripts = await createTempDir('go-wrappers-', fixtures.root);
    workDir = await createTempDir('direct-work-', fixtures.root);
  });

  afterAll(async () => {
    await fixtures?.close();
  });

  /** An executable shell script standing in for the go command. */
  async function script(name: string, body: string): Promise<string> {
    const file = join(scripts, name);
    await writeFile(file, `#!/bin/sh\n${body}\n`);
    await chmod(file, 0o755);
    return file;
  }

  it('never runs more go processes than its concurrency', async () => {
    const log = join(scripts, 'concurrency.log');
    // Each run records its start and end around the real go command, slowed down so that
    // unbounded runs would overlap.
    const goBinary = await script(
      'go-recording',
      [
        `echo "start $(date +%s%N)" >> ${log}`,
        'sleep 0.3',
        'go "$@"',
        'code=$?',
        `echo "end $(date +%s%N)" >> ${log}`,
        'exit $code',
      ].join('\n'),
    );
    const upstream = new DirectUpstream({ env: fixtures.directEnv, workDir, goBinary, concurrency: 2 });
    const versions = ['v1.0.0', 'v1.1.0', 'v1.2.0-pre', 'v1.10.0', fixtures.hello.untagged?.version ?? ''];
    const fetched = await Promise.all([
      ...versions.map((version) => upstream.fetch(fixtures.hello.path, version)),
      upstream.fetch(fixtures.mixedCase.path, 'v1.0.0'),
    ]);
    await Promise.all(fetched.map((version) => version.release()));
    expect(fetched.map((version) => version.version)).toEqual([...versions, 'v1.0.0']);

    const events = (await readFile(log, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => line.split(' '))
      .map(([kind, time]) => ({ delta: kind === 'start' ? 1 : -1, time: BigInt(time ?? '0') }))
      // At equal times an end is counted before a start, so that nothing is over-counted.
      .sort((a, b) => (a.time === b.time ? a.delta - b.delta : a.time < b.time ? -1 : 1));
    expect(events).toHaveLength(12);
    let running = 0;
    let most = 0;
    for (const event of events) {
      running += event.delta;
      most = Math.max(most, running);
    }
    expect(most).toBe(2);
  });

  it('kills the whole process group when the deadline passes', async () => {
    const pidFile = join(scripts, 'timeout.pid');
    const goBinary = await script('go-hanging', `sleep 30 &\necho $! > ${pidFile}\nwait`);
    const upstream = new DirectUpstream({ env: fixtures.directEnv, workDir, goBinary, timeoutMs: 500 });
    const started = Date.now();
    expect(await rejectionKind(upstream.fetch(fixtures.hello.path, 'v1.0.0'))).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(5000);
    const sleeper = Number((await readFile(pidFile, 'utf8')).trim());
    await waitFor(async () => !(await alive(sleeper)));
    expect(await readdir(workDir)).toEqual([]);
  });

  it('kills the process group and answers cancelled when the caller aborts', async () => {
    const pidFile = join(scripts, 'abort.pid');
    const goBinary = await script('go-hanging-abort', `sleep 30 &\necho $! > ${pidFile}\nwait`);
    const upstream = new DirectUpstream({ env: fixtures.directEnv, workDir, goBinary });
    const controller = new AbortController();
    const listing = rejectionKind(upstream.list(fixtures.hello.path, { signal: controller.signal }));
    await waitFor(async () => (await readFile(pidFile, 'utf8').catch(() => '')).trim() !== '');
    controller.abort();
    expect(await listing).toBe('cancelled');
    await waitFor(async () => !(await alive(Number((await readFile(pidFile, 'utf8')).trim()))));
    expect(await readdir(workDir)).toEqual([]);
  });

  it('gives up on a call still waiting for a slot when the caller aborts, without starting it', async () => {
    const log = join(scripts, 'queued.log');
    const goBinary = await script(
      'go-slow',
      `echo "start $*" >> ${log}\nsleep 1\necho '{"Path":"x","Versions":["v1.0.0"]}'`,
    );
    const upstream = new DirectUpstream({ env: fixtures.directEnv, workDir, goBinary, concurrency: 1 });
    const first = upstream.list(fixtures.hello.path);
    const controller = new AbortController();
    const second = rejectionKind(upstream.list(fixtures.mixedCase.path, { signal: controller.signal }));
    await waitFor(async () => (await readFile(log, 'utf8').catch(() => '')) !== '');
    controller.abort();
    expect(await second).toBe('cancelled');
    expect(await first).toEqual(['v1.0.0']);
    expect((await readFile(log, 'utf8')).trim().split('\n')).toEqual([
      `start list -m -json -versions ${fixtures.hello.path}`,
    ]);
  });

  it('answers bad-gateway with a short excerpt for an unexplained failure', async () => {
    const goBinary = await script(
      'go-noisy',
      `i=0\nwhile [ $i -lt 2000 ]; do echo "noise line $i" >&2; i=$((i+1)); done\necho "go: something odd happened" >&2\nexit 1`,
    );
    const upstream = new DirectUpstream({ env: fixtures.directEnv, workDir, goBinary });
    const error = await upstream.latest(fixtures.hello.path).catch((caught: unknown) => caught);
    expect(isModuleError(error, 'bad-gateway')).toBe(true);
    const message = (error as Error).message;
    expect(message).toContain('something odd happened');
    expect(message.length).toBeLessThan(600);
  });

  it('answers internal when the go command cannot be started', async () => {
    const upstream = new DirectUpstream({
      env: fixtures.directEnv,
      workDir,
      goBinary: join(scripts, 'no-such-go'),
    });
    expect(await rejectionKind(upstream.list(fixtures.hello.path))).toBe('internal');
  });

  it('passes NETRC and the extra environment, and forces GOPROXY=direct', async () => {
    const go = new GoCommand({
      netrcPath: '/secrets/netrc',
      env: { GOPRIVATE: 'example.test', GOPROXY: 'https://proxy.invalid', GOFLAGS: '-mod=mod' },
      baseEnv: { PATH: '/usr/bin:/bin', GOPROXY: 'https://elsewhere.invalid', GONOPROXY: '*' },
    });
    const env = go.environment('/work/x');
    expect(env).toMatchObject({
      NETRC: '/secrets/netrc',
      GOPRIVATE: 'example.test',
      GOPROXY: 'direct',
      GOFLAGS: '-modcacherw -mod=mod',
      GOPATH: '/work/x/gopath',
      GOMODCACHE: '/work/x/gopath/pkg/mod',
      GIT_TERMINAL_PROMPT: '0',
      PATH: '/usr/bin:/bin',
    });
    expect(env['GONOPROXY']).toBeUndefined();
  });
});

describe('goCommandError', () => {
  it.each([
    ['go: example.com/m@v9.9.9: invalid version: unknown revision v9.9.9', 'not-found'],
    ['go: module example.com/m: no matching versions for query "latest"', 'not-found'],
    [
      'go: example.com/m@v1.0.0: parsing go.mod:\n\tmodule declares its path as: other.com/m\n\t        but was required as: example.com/m',
      'not-found',
    ],
    ["fatal: could not read Username for 'https://github.com': terminal prompts disabled", 'not-found'],
    ["remote: Repository not found.\nfatal: repository 'https://github.com/a/b/' not found", 'not-found'],
    ['go: example.test/m.git@v1.0.0: no secure protocol found for repository', 'not-found'],
    ['go: example.com/m@v1.0.0: exec: "git": executable file not found in $PATH', 'bad-gateway'],
    ['go: example.com/m@v1.0.0: dial tcp 10.0.0.1:443: connect: connection refused', 'bad-gateway'],
  ] as const)('%s → %s', (output, kind) => {
    expect(goCommandError('test', output).kind).toBe(kind);
  });
});
