import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isModuleError, type ErrorKind, type ModuleError } from '@modproxy/errors';
import { sortVersions } from '@modproxy/gomod';
import { createFixtureModules, createTempDir, waitUntil, type FixtureModules } from '@modproxy/testing';
import { withDeadline } from './call-deadline';
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

function waitFor(condition: () => Promise<boolean>): Promise<void> {
  return waitUntil(condition, { intervalMs: 20 });
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
    const upstream = new DirectUpstream({
      env: fixtures.directEnv,
      workDir,
      goBinary,
      concurrency: 2,
      hostConcurrency: 2,
    });
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
    // Without the deadline the stand-in would run for 30 s and end with no output, not timeout.
    expect(await rejectionKind(upstream.fetch(fixtures.hello.path, 'v1.0.0'))).toBe('timeout');
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
    const release = join(scripts, 'queued.release');
    // The first call holds the slot until the test releases it, however slow the machine.
    const goBinary = await script(
      'go-slow',
      `echo "start $*" >> ${log}\nwhile [ ! -e ${release} ]; do sleep 0.05; done\necho '{"Path":"x","Versions":["v1.0.0"]}'`,
    );
    const upstream = new DirectUpstream({ env: fixtures.directEnv, workDir, goBinary, concurrency: 1 });
    const first = upstream.list(fixtures.hello.path);
    // The second call only once the first holds the slot, so that it is the one waiting.
    await waitFor(async () => (await readFile(log, 'utf8').catch(() => '')) !== '');
    const controller = new AbortController();
    const second = rejectionKind(upstream.list(fixtures.mixedCase.path, { signal: controller.signal }));
    // Its temp directory exists: it went on to wait for the slot.
    await waitFor(async () => (await readdir(workDir)).length === 2);
    controller.abort();
    expect(await second).toBe('cancelled');
    await writeFile(release, '');
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

describe('GoCommand environment', () => {
  let fixtures: FixtureModules;
  let scripts: string;
  let workDir: string;

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    scripts = await createTempDir('go-env-wrappers-', fixtures.root);
    workDir = await createTempDir('direct-work-', fixtures.root);
  });

  afterAll(async () => {
    await fixtures?.close();
  });

  it('runs the go command with the allow-listed environment only, never the server’s secrets', async () => {
    const recorded = join(scripts, 'recorded.env');
    // Records what the go command gets, then is the go command.
    const goBinary = join(scripts, 'go-env-recording');
    await writeFile(goBinary, `#!/bin/sh\nenv -0 > ${recorded}\nexec go "$@"\n`);
    await chmod(goBinary, 0o755);
    const secrets: Record<string, string> = {
      STORAGE_TOKEN: 'storage-token-s3cret-value-0001',
      LATHENS_GRPC_TOKEN: 'lathens-token-s3cret-value-0002',
      GRPC_TOKEN: 'grpc-token-s3cret-value-0003',
      UPSTREAM_AUTHORIZATION: 'Bearer upstream-s3cret-value-0004',
      REDIS_URL: 'redis://:redis-pw-s3cret-0005@127.0.0.1:6379',
      QUEUE_REDIS_URL: 'redis://:queue-pw-s3cret-0006@127.0.0.1:6380',
      MONGODB_URI: 'mongodb://admin:mongo-pw-s3cret-0007@127.0.0.1:27017',
      AWS_SECRET_ACCESS_KEY: 'aws-s3cret-value-0008',
      GOOGLE_APPLICATION_CREDENTIALS: '/run/secrets/gcp-s3cret-0009.json',
      GIT_TOKEN: 'git-token-s3cret-0010',
      GITHUB_TOKEN: 'github-token-s3cret-0011',
    };
    // What the fetch needs, all from the server's environment (no `env` option): if the allow
    // list dropped any of it, the fixture could not be fetched.
    const needed: Record<string, string> = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: fixtures.env['HOME'] ?? '',
      TMPDIR: tmpdir(),
      GIT_CONFIG_GLOBAL: fixtures.gitConfigPath,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'advice.detachedHead',
      GIT_CONFIG_VALUE_0: 'false',
      GIT_SSH_COMMAND: 'ssh -o BatchMode=yes',
      GOSUMDB: 'off',
      GONOSUMDB: 'example.test',
      SSL_CERT_FILE: '/etc/ssl/certs/ca-certificates.crt',
      SSL_CERT_DIR: '/etc/ssl/certs',
      HTTPS_PROXY: 'http://127.0.0.1:9',
      HTTP_PROXY: 'http://127.0.0.1:9',
      NO_PROXY: '127.0.0.1,localhost,::1',
      https_proxy: 'http://127.0.0.1:9',
      no_proxy: '127.0.0.1,localhost,::1',
    };
    const upstream = new DirectUpstream({
      workDir,
      goBinary,
      netrcPath: join(fixtures.root, 'netrc'),
      baseEnv: { ...secrets, ...needed },
    });
    const fetched = await upstream.fetch(fixtures.hello.path, 'v1.0.0');
    await fetched.release();
    expect(fetched.version).toBe('v1.0.0');

    const dump = await readFile(recorded, 'utf8');
    const env = Object.fromEntries(
      dump
        .split('\0')
        .filter((entry) => entry !== '')
        .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
    );
    expect(env).toMatchObject({ ...needed, NETRC: join(fixtures.root, 'netrc'), GOPROXY: 'direct' });
    for (const name of Object.keys(secrets)) expect(env, name).not.toHaveProperty(name);
    for (const value of Object.values(secrets)) expect(dump).not.toContain(value);
    // Nothing else of the server's environment came along: only the allow list and what the
    // go command is always given.
    const alwaysSet = ['GOPATH', 'GOMODCACHE', 'GOCACHE', 'GOPROXY', 'GOFLAGS', 'GOWORK', 'GO111MODULE'];
    const forced = ['GIT_TERMINAL_PROMPT', 'GCM_INTERACTIVE', 'GOTOOLCHAIN', 'NETRC', 'PWD', 'SHLVL', '_'];
    expect(
      Object.keys(env)
        .filter((name) => !(name in needed) && !alwaysSet.includes(name) && !forced.includes(name))
        .sort(),
    ).toEqual([]);
  });
});

describe('GoCommand under pressure', () => {
  let fixtures: FixtureModules;
  let scripts: string;
  let workDir: string;
  let goBinary: string;
  let test = 0;

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    scripts = await createTempDir('go-slow-wrappers-', fixtures.root);
    workDir = await createTempDir('direct-work-', fixtures.root);
    // A VCS host that answers only when the test says so: a go command for a slow.test module
    // records that it started and blocks until $RELEASE exists; any other module is fetched by
    // the real go command.
    goBinary = join(scripts, 'go-slow-host');
    await writeFile(
      goBinary,
      [
        '#!/bin/sh',
        'case "$*" in',
        '  *slow.test*)',
        '    echo "$*" >> "$STARTED"',
        '    while [ ! -e "$RELEASE" ]; do sleep 0.02; done',
        `    echo '{"Path":"slow.test/x","Versions":["v1.0.0"]}'`,
        '    exit 0;;',
        'esac',
        'exec go "$@"',
        '',
      ].join('\n'),
    );
    await chmod(goBinary, 0o755);
  });

  afterAll(async () => {
    await fixtures?.close();
  });

  /** A go command for this test only, with its own "started" log and release file. */
  function slowHost(options: { concurrency: number; hostConcurrency?: number; queueLimit?: number }) {
    test++;
    const started = join(scripts, `started-${test}.log`);
    const release = join(scripts, `release-${test}`);
    const go = new GoCommand({
      goBinary,
      workDir,
      env: { ...fixtures.directEnv, STARTED: started, RELEASE: release },
      ...options,
    });
    const run = (module: string, signal?: AbortSignal) =>
      go.run(['list', '-m', '-json', '-versions', module], {
        dir: workDir,
        op: 'upstream.direct.list',
        module,
        ...(signal ? { signal } : {}),
      });
    const startedModules = async (): Promise<string[]> =>
      (await readFile(started, 'utf8').catch(() => ''))
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => line.split(' ').at(-1) ?? '');
    const waitStarted = (count: number) => waitFor(async () => (await startedModules()).length >= count);
    return { go, run, startedModules, waitStarted, release: () => writeFile(release, '') };
  }

  it('answers unavailable with Retry-After at once when the queue is full, and starts nothing for it', async () => {
    const host = slowHost({ concurrency: 1, queueLimit: 1 });
    const first = host.run('slow.test/a');
    await host.waitStarted(1);
    const second = host.run('slow.test/b');
    expect(host.go.queued).toBe(1);
    const refused = (await host.run('slow.test/c').catch((error: unknown) => error)) as ModuleError;
    expect(refused.kind).toBe('unavailable');
    expect(refused.retryAfterSeconds).toBe(10);
    expect(refused.message).toContain('slow.test/c');
    expect(refused.detail).toContain('queue is full');
    await host.release();
    await Promise.all([first, second]);
    expect(await host.startedModules()).toEqual(['slow.test/a', 'slow.test/b']);
    expect([host.go.running, host.go.queued]).toEqual([0, 0]);
  });

  it('never gives one host more than hostConcurrency slots, so other hosts still get theirs', async () => {
    const host = slowHost({ concurrency: 2, hostConcurrency: 1 });
    const slowA = host.run('slow.test/a');
    await host.waitStarted(1);
    const slowB = host.run('slow.test/b');
    // A slot is free, but not for slow.test.
    expect([host.go.running, host.go.queued]).toEqual([1, 1]);
    // A module of another host takes the free slot and is fetched while slow.test still blocks.
    const other = await host.run(fixtures.hello.path);
    expect(other.exitCode).toBe(0);
    expect(sortVersions((JSON.parse(other.stdout) as { Versions: string[] }).Versions)).toEqual(
      fixtures.hello.versions,
    );
    expect(await host.startedModules()).toEqual(['slow.test/a']);
    await host.release();
    await Promise.all([slowA, slowB]);
    expect(await host.startedModules()).toEqual(['slow.test/a', 'slow.test/b']);
  });

  it('answers timeout when a deadline fires the signal, cancelled only when the caller leaves', async () => {
    const host = slowHost({ concurrency: 1 });
    const deadline = () => new DOMException('the fetch deadline passed', 'TimeoutError');
    const runningCall = new AbortController();
    const running = rejectionKind(host.run('slow.test/running', runningCall.signal));
    await host.waitStarted(1);
    const waitingCall = new AbortController();
    const waiting = rejectionKind(host.run('slow.test/waiting', waitingCall.signal));
    expect(host.go.queued).toBe(1);
    waitingCall.abort(deadline());
    expect(await waiting).toBe('timeout');
    runningCall.abort(deadline());
    expect(await running).toBe('timeout');

    // The signal withDeadline makes for an upstream call, with a caller that stays.
    const caller = new AbortController();
    expect(await rejectionKind(host.run('slow.test/deadline', withDeadline(caller.signal, 300)))).toBe(
      'timeout',
    );
    // The same signal when the caller goes away first.
    const leaving = rejectionKind(host.run('slow.test/leaving', withDeadline(caller.signal, 300_000)));
    await host.waitStarted(3);
    caller.abort();
    expect(await leaving).toBe('cancelled');
    expect(await host.startedModules()).toEqual([
      'slow.test/running',
      'slow.test/deadline',
      'slow.test/leaving',
    ]);
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
    // What the go command says for a made-up host (DNS cannot be asked in a test).
    [
      'example.test@v1.10.0: unrecognized import path "example.test": https fetch: Get "https://example.test/?go-get=1": dial tcp: lookup example.test on 10.96.0.10:53: no such host',
      'not-found',
    ],
    [
      'made.up/x@v1.0.0: unrecognized import path "made.up/x": https fetch: Get "https://made.up/x?go-get=1": dial tcp: lookup made.up: no such host',
      'not-found',
    ],
    [
      'made.up@v1.0.0: unrecognized import path "made.up": http/https fetch: Get "http://made.up/?go-get=1": dial tcp: lookup made.up on [::1]:53: no such host',
      'not-found',
    ],
    // The resolver failing, another name failing (the HTTPS proxy's), or the way to the proxy: not the module's answer.
    [
      'made.up@v1.0.0: unrecognized import path "made.up": https fetch: Get "https://made.up/?go-get=1": dial tcp: lookup made.up on 10.96.0.10:53: server misbehaving',
      'bad-gateway',
    ],
    [
      'made.up@v1.0.0: unrecognized import path "made.up": https fetch: Get "https://made.up/?go-get=1": dial tcp: lookup made.up on 10.96.0.10:53: read udp 10.0.0.5:4104->10.96.0.10:53: i/o timeout',
      'bad-gateway',
    ],
    [
      'made.up@v1.0.0: unrecognized import path "made.up": https fetch: Get "https://made.up/?go-get=1": proxyconnect tcp: dial tcp: lookup made.up on 10.96.0.10:53: no such host',
      'bad-gateway',
    ],
    [
      'example.test@v1.0.0: unrecognized import path "example.test": https fetch: Get "https://example.test/?go-get=1": proxyconnect tcp: dial tcp 127.0.0.1:41046: connect: connection refused',
      'bad-gateway',
    ],
  ] as const)('%s → %s', (output, kind) => {
    expect(goCommandError('test', output).kind).toBe(kind);
  });
});
