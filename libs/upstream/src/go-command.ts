import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { abortedByDeadline, errors, type ModuleError } from '@modproxy/errors';
import { HostSlots } from './host-slots';
import { runProcessGroup } from './process-group';

export interface GoCommandOptions {
  /** The go command to run, a name on PATH or a path. @default 'go' */
  goBinary?: string;
  /**
   * Extra environment for the go command on top of `baseEnv`: GOPRIVATE, GONOSUMDB, GOSUMDB,
   * GOINSECURE, GIT_CONFIG_GLOBAL, … GOPROXY, GOPATH and GOMODCACHE here are ignored (every
   * command fetches directly into its own temp GOPATH); GOFLAGS here is added to `-modcacherw`.
   */
  env?: Record<string, string>;
  /** A netrc file with credentials for private hosts, passed to the go command as NETRC. */
  netrcPath?: string;
  /** Go processes running at once; more calls wait for a slot. @default 4 */
  concurrency?: number;
  /**
   * Go processes at once for modules of one host (a module path's first element), so that one
   * slow or hostile VCS host cannot hold every slot. @default concurrency - 1, at least 1
   */
  hostConcurrency?: number;
  /**
   * Calls waiting for a slot; past it a call fails at once with `unavailable` (503 with
   * `Retry-After`) instead of waiting out its deadline. 0: never wait. @default 128
   */
  queueLimit?: number;
  /** Deadline of one go command, from its start; its whole process group is killed after it. @default 300000 */
  timeoutMs?: number;
  /** Parent directory of the temp GOPATHs; must not be inside a Go module. @default os.tmpdir() */
  workDir?: string;
  /**
   * The server's environment, of which the go command gets only what it needs to reach VCS
   * hosts ({@link inheritedFromServer}); never its secrets. @default process.env
   */
  baseEnv?: Record<string, string | undefined>;
}

export interface GoRunOptions {
  /** A directory from `createTempDir()`: the working directory, holding GOPATH and GOCACHE. */
  dir: string;
  signal?: AbortSignal;
  /** For errors: the operation, e.g. `upstream.direct.fetch`, and what it was about. */
  op: string;
  module?: string;
  version?: string;
}

export interface GoRunResult {
  stdout: string;
  stderr: string;
  /** `null` when the process ended on a signal. */
  exitCode: number | null;
}

/**
 * What the go command takes from the server's environment: where programs and home are, the
 * go and git settings for reaching VCS hosts (checksum database, private modules, git config,
 * ssh, CA files), the HTTP proxy and the netrc. An allow list, because the server's
 * environment also holds its own secrets (STORAGE_TOKEN, LATHENS_GRPC_TOKEN,
 * UPSTREAM_AUTHORIZATION, REDIS_URL, MONGODB_URI, cloud credentials …) and the go command runs
 * git, ssh and whatever a repository's git config names. Names are listed one by one rather
 * than by prefix: `GO*` would let `GOOGLE_APPLICATION_CREDENTIALS` through, `GIT_*` a `GIT_TOKEN`.
 * GOPROXY, GOFLAGS, GONOPROXY, GOPATH and the caches are not here: every command sets its own.
 */
const INHERITED_FROM_SERVER: ReadonlySet<string> = new Set([
  'PATH',
  'HOME',
  'TMPDIR',
  'XDG_CONFIG_HOME',
  'XDG_CACHE_HOME',
  'GOROOT',
  'GOSUMDB',
  'GONOSUMDB',
  'GONOSUMCHECK',
  'GOPRIVATE',
  'GOINSECURE',
  'GOVCS',
  'GOAUTH',
  'GOTELEMETRY',
  'GIT_CONFIG_GLOBAL',
  'GIT_CONFIG_SYSTEM',
  'GIT_CONFIG_NOSYSTEM',
  'GIT_CONFIG_COUNT',
  'GIT_SSH',
  'GIT_SSH_COMMAND',
  'GIT_SSH_VARIANT',
  'GIT_ASKPASS',
  'GIT_SSL_NO_VERIFY',
  'GIT_SSL_CAINFO',
  'GIT_SSL_CAPATH',
  'GIT_ALLOW_PROTOCOL',
  'GIT_PROTOCOL_FROM_USER',
  'GIT_PROXY_COMMAND',
  'GIT_HTTP_USER_AGENT',
  'GIT_HTTP_LOW_SPEED_LIMIT',
  'GIT_HTTP_LOW_SPEED_TIME',
  'GIT_TRACE',
  'GIT_CURL_VERBOSE',
  'SSH_AUTH_SOCK',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'ALL_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
  'all_proxy',
  'NETRC',
]);
/** `git -c` settings given through the environment (GIT_CONFIG_COUNT with KEY_n/VALUE_n). */
const GIT_CONFIG_PAIR = /^GIT_CONFIG_(KEY|VALUE)_\d+$/;

/**
 * Variables that would change how the go command fetches (the server may well run with a
 * GOPROXY pointing at itself); the extra `env` cannot set them either.
 */
const SET_PER_COMMAND = [
  'GOPROXY',
  'GOFLAGS',
  'GONOPROXY',
  'GOPATH',
  'GOMODCACHE',
  'GOCACHE',
  'GOWORK',
  'GO111MODULE',
];
/** A full queue's `Retry-After`: about how long a few go commands take to make room. */
const QUEUE_FULL_RETRY_AFTER_SECONDS = 10;
/** stderr beyond this is dropped (keeping the end, where the go command says what failed). */
const MAX_STDERR_CHARS = 64 * 1024;
/** Errors quote this much of the go command's stderr. */
const ERROR_EXCERPT_CHARS = 400;

/**
 * Runs the go command for direct fetches: each call in an isolated GOPATH/GOMODCACHE,
 * GOPROXY=direct whatever the server's own environment says, with an allow-listed environment,
 * at most `concurrency` processes at once (`hostConcurrency` for one VCS host), a bounded
 * queue, and a deadline after which the whole process group (git included) dies.
 */
export class GoCommand {
  private readonly goBinary: string;
  private readonly timeoutMs: number;
  private readonly workDir: string;
  private readonly baseEnv: Record<string, string>;
  private readonly queueLimit: number;
  private readonly slots: HostSlots;

  constructor(options: GoCommandOptions = {}) {
    this.goBinary = options.goBinary ?? 'go';
    const concurrency = Math.max(1, options.concurrency ?? 4);
    const hostConcurrency = Math.max(1, Math.min(concurrency, options.hostConcurrency ?? concurrency - 1));
    this.slots = new HostSlots(concurrency, hostConcurrency);
    this.queueLimit = Math.max(0, options.queueLimit ?? 128);
    this.timeoutMs = options.timeoutMs ?? 300_000;
    this.workDir = options.workDir ?? tmpdir();
    this.baseEnv = buildBaseEnv(options);
  }

  /** Go processes running now. */
  get running(): number {
    return this.slots.active;
  }

  /** Calls waiting for a slot now. */
  get queued(): number {
    return this.slots.waiting;
  }

  /** A fresh directory for one or more go commands; the caller removes it with `removeTempDir`. */
  async createTempDir(): Promise<string> {
    return mkdtemp(join(this.workDir, 'modproxy-direct-'));
  }

  async removeTempDir(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }

  /** The environment a command in `dir` runs with. */
  environment(dir: string): Record<string, string> {
    const gopath = join(dir, 'gopath');
    return {
      ...this.baseEnv,
      GOPATH: gopath,
      GOMODCACHE: join(gopath, 'pkg', 'mod'),
      GOCACHE: join(dir, 'gocache'),
    };
  }

  /**
   * Runs `go <args>` in `options.dir` once a slot is free. Resolves with the output whatever
   * the exit code; rejects only with `timeout`, `cancelled` or (the go command cannot be started) `internal`.
   */
  async run(args: readonly string[], options: GoRunOptions): Promise<GoRunResult> {
    const host = vcsHost(options.module);
    await this.acquire(host, args, options);
    try {
      return await this.spawn(args, options);
    } finally {
      this.slots.release(host);
    }
  }

  /**
   * A slot, at once or after waiting in the queue; a full queue fails at once, since waiting
   * behind it would only run out the caller's deadline.
   */
  private async acquire(host: string, args: readonly string[], options: GoRunOptions): Promise<void> {
    if (options.signal?.aborted) throw abortError(options, args, 'before it started');
    if (this.slots.tryAcquire(host)) return;
    if (this.slots.waiting >= this.queueLimit) {
      throw errors.unavailable(
        options.op,
        `${subject(options, args)}: too many fetches from version control are waiting; try again shortly`,
        {
          module: options.module,
          version: options.version,
          retryAfterSeconds: QUEUE_FULL_RETRY_AFTER_SECONDS,
          detail: `upstream direct: the go command's queue is full (${this.slots.waiting} waiting, ${this.slots.active} running)`,
        },
      );
    }
    try {
      await this.slots.wait(host, options.signal);
    } catch {
      throw abortError(options, args, 'while waiting for a free go command');
    }
  }

  private async spawn(args: readonly string[], options: GoRunOptions): Promise<GoRunResult> {
    if (options.signal?.aborted) throw abortError(options, args, 'before it started');
    const context = { module: options.module, version: options.version };
    const ran = await runProcessGroup(this.goBinary, args, {
      cwd: options.dir,
      env: this.environment(options.dir),
      timeoutMs: this.timeoutMs,
      maxStderrChars: MAX_STDERR_CHARS,
      ...(options.signal ? { signal: options.signal } : {}),
      op: options.op,
      refs: context,
    });
    switch (ran.end) {
      case 'timeout':
        throw errors.timeout(
          options.op,
          `${subject(options, args)}: timed out: the go command did not finish within ${this.timeoutMs} ms`,
          { ...context, detail: `upstream direct: go ${args.join(' ')} killed after ${this.timeoutMs} ms` },
        );
      case 'cancelled':
        throw abortError(options, args, 'while the go command ran');
      default:
        return { stdout: ran.stdout.toString('utf8'), stderr: ran.stderr, exitCode: ran.exitCode };
    }
  }
}

/** Whether the go command gets this variable of the server's environment. */
export function inheritedFromServer(name: string): boolean {
  return INHERITED_FROM_SERVER.has(name) || GIT_CONFIG_PAIR.test(name);
}

/**
 * What a VCS command (the go command, git) gets of the server's environment: the allow list
 * only, and no prompts, since a command waiting for a password would hang until its deadline.
 */
export function vcsEnvironment(
  baseEnv: Record<string, string | undefined> = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(baseEnv)) {
    if (value !== undefined && inheritedFromServer(key)) env[key] = value;
  }
  env['GIT_TERMINAL_PROMPT'] = '0';
  env['GCM_INTERACTIVE'] = 'never';
  return env;
}

function buildBaseEnv(options: GoCommandOptions): Record<string, string> {
  const env = vcsEnvironment(options.baseEnv);
  // Another toolchain would be downloaded from the network, outside any deadline we control.
  env['GOTOOLCHAIN'] = 'local';
  if (options.netrcPath !== undefined) env['NETRC'] = options.netrcPath;
  const extra = { ...options.env };
  const extraFlags = extra['GOFLAGS'];
  for (const key of SET_PER_COMMAND) delete extra[key];
  Object.assign(env, extra);
  env['GOPROXY'] = 'direct';
  env['GOFLAGS'] = ['-modcacherw', extraFlags ?? ''].join(' ').trim();
  env['GOWORK'] = 'off';
  env['GO111MODULE'] = 'on';
  return env;
}

/** The VCS host of a module path, its first element: what `hostConcurrency` counts by. */
function vcsHost(module: string | undefined): string {
  return module?.split('/', 1)[0] ?? '';
}

/** What a command was about, for messages: `module@version`, or the command itself. */
function subject(options: GoRunOptions, args: readonly string[]): string {
  if (options.module === undefined) return `go ${args.slice(0, 2).join(' ')}`;
  return options.version === undefined ? options.module : `${options.module}@${options.version}`;
}

/**
 * The caller's signal fired: `timeout` when a deadline fired it (the fetch deadline, an
 * upstream call's deadline), `cancelled` only when the caller itself went away.
 */
function abortError(options: GoRunOptions, args: readonly string[], when: string): ModuleError {
  const context = { module: options.module, version: options.version };
  if (options.signal && abortedByDeadline(options.signal)) {
    return errors.timeout(options.op, `${subject(options, args)}: timed out fetching from version control`, {
      ...context,
      detail: `upstream direct: the deadline passed ${when} (go ${args.join(' ')})`,
    });
  }
  return errors.cancelled(options.op, `${subject(options, args)}: cancelled by the caller`, context);
}

/**
 * What the go command says when the module or version does not exist (or cannot be seen
 * without credentials, which a proxy cannot tell apart): the proxy answers 404 for these,
 * so that clients fall through to their next GOPROXY entry.
 */
const NOT_FOUND_PATTERNS: readonly RegExp[] = [
  /unknown revision/i,
  /no matching versions/i,
  /invalid version/i,
  /invalid pseudo-version/i,
  /repository not found/i,
  /not found/i,
  /no secure protocol found for repository/i,
  /does not appear to be a git repository/i,
  /module declares its path as/i,
  /malformed module path/i,
  /terminal prompts disabled/i,
  /could not read (username|password)/i,
  /disabled by GOPRIVATE\/GONOPROXY|disabled by GOVCS/i,
  // The status the host answered `?go-get=1` with (`…: 404 Not Found`), not digits in an address.
  /unrecognized import path .*: (404|410) /i,
  /module source tree too large/i,
  // A path the go command asks about that is no module, as it does for every shorter prefix of
  // a package path in `go get` (`example.com`, `github.com/team`): the host answered its
  // `?go-get=1` with a page naming no repository for it, …
  /unrecognized import path .*: no go-import meta tags/i,
  // … the path cannot be a repository on a host the go command knows (`github.com/team`), …
  /invalid [\w.-]+ import path/i,
  // … or the path's own host does not exist (NXDOMAIN). A lookup that failed otherwise (a
  // resolver timing out or misbehaving) and anything on the way to an HTTPS proxy
  // (`proxyconnect`) stay upstream failures.
  /unrecognized import path "([^"/]+)[^"]*": (?:http\/)?https fetch: (?!.*proxyconnect).*dial tcp: lookup \1(?: on \S+)?: no such host/i,
];

/** Failures of this server's own setup, which must not pass for a missing module. */
const SERVER_PROBLEM_PATTERNS: readonly RegExp[] = [
  /executable file not found/i,
  /command not found/i,
  /no space left on device/i,
  /permission denied/i,
];

/** Turns a go command failure into `not-found` or `bad-gateway` with a short excerpt of what it said. */
export function goCommandError(
  op: string,
  output: string,
  context: { module?: string; version?: string } = {},
): ModuleError {
  const excerpt = errorExcerpt(output);
  const options = { module: context.module, version: context.version };
  const serverProblem = SERVER_PROBLEM_PATTERNS.some((pattern) => pattern.test(output));
  if (!serverProblem && NOT_FOUND_PATTERNS.some((pattern) => pattern.test(output)))
    return errors.notFound(op, excerpt, options);
  return errors.badGateway(op, `go command failed: ${excerpt}`, options);
}

/** The last lines of the go command's stderr (where it says what failed), one line, bounded. */
export function errorExcerpt(output: string): string {
  const text = output
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join('; ');
  if (text === '') return 'no output';
  return text.length <= ERROR_EXCERPT_CHARS ? text : `…${text.slice(-ERROR_EXCERPT_CHARS)}`;
}
