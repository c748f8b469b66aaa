import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errors, type ModuleError } from '@modproxy/errors';

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
  /** Deadline of one go command, from its start; its whole process group is killed after it. @default 300000 */
  timeoutMs?: number;
  /** Parent directory of the temp GOPATHs; must not be inside a Go module. @default os.tmpdir() */
  workDir?: string;
  /** The environment the go command starts from. @default process.env */
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
 * Variables of the server's own environment that would change how the go command fetches
 * (the server may well run with a GOPROXY pointing at itself); they are never inherited.
 */
const NOT_INHERITED = [
  'GOPROXY',
  'GOFLAGS',
  'GONOPROXY',
  'GOPATH',
  'GOMODCACHE',
  'GOCACHE',
  'GOWORK',
  'GO111MODULE',
];
/** stderr beyond this is dropped (keeping the end, where the go command says what failed). */
const MAX_STDERR_CHARS = 64 * 1024;
/** Errors quote this much of the go command's stderr. */
const ERROR_EXCERPT_CHARS = 400;

/**
 * Runs the go command for direct fetches: each call in an isolated GOPATH/GOMODCACHE,
 * GOPROXY=direct whatever the server's own environment says, at most `concurrency`
 * processes at once, and a deadline after which the whole process group (git included) dies.
 */
export class GoCommand {
  private readonly goBinary: string;
  private readonly concurrency: number;
  private readonly timeoutMs: number;
  private readonly workDir: string;
  private readonly baseEnv: Record<string, string>;
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(options: GoCommandOptions = {}) {
    this.goBinary = options.goBinary ?? 'go';
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.timeoutMs = options.timeoutMs ?? 300_000;
    this.workDir = options.workDir ?? tmpdir();
    this.baseEnv = buildBaseEnv(options);
  }

  /** Go processes running now. */
  get running(): number {
    return this.active;
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
    await this.acquire(options);
    try {
      return await this.spawn(args, options);
    } finally {
      this.releaseSlot();
    }
  }

  private async acquire(options: GoRunOptions): Promise<void> {
    if (options.signal?.aborted) throw cancelled(options);
    if (this.active < this.concurrency) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        options.signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const index = this.waiting.indexOf(grant);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(cancelled(options));
      };
      this.waiting.push(grant);
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private releaseSlot(): void {
    const next = this.waiting.shift();
    // The slot passes straight to the next waiter, so `active` stays as it is.
    if (next) next();
    else this.active--;
  }

  private spawn(args: readonly string[], options: GoRunOptions): Promise<GoRunResult> {
    return new Promise((resolve, reject) => {
      if (options.signal?.aborted) {
        reject(cancelled(options));
        return;
      }
      const child = spawn(this.goBinary, args, {
        cwd: options.dir,
        env: this.environment(options.dir),
        // Its own process group, so that a timeout kills git and ssh along with the go command.
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const stdout: Buffer[] = [];
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
        if (stderr.length > 2 * MAX_STDERR_CHARS) stderr = stderr.slice(-MAX_STDERR_CHARS);
      });
      let endedBy: 'timeout' | 'cancelled' | undefined;
      const killGroup = (reason: 'timeout' | 'cancelled'): void => {
        endedBy ??= reason;
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // The group is already gone.
        }
      };
      const timer = setTimeout(() => killGroup('timeout'), this.timeoutMs);
      const onAbort = (): void => killGroup('cancelled');
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const cleanUp = (): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      child.once('error', (error) => {
        cleanUp();
        reject(
          errors.internal(options.op, `cannot run ${this.goBinary}: ${error.message}`, {
            module: options.module,
            version: options.version,
            cause: error,
          }),
        );
      });
      child.once('close', (exitCode) => {
        cleanUp();
        if (endedBy === 'timeout') {
          reject(
            errors.timeout(options.op, `go ${args[0] ?? ''} did not finish within ${this.timeoutMs} ms`, {
              module: options.module,
              version: options.version,
            }),
          );
        } else if (endedBy === 'cancelled') {
          reject(cancelled(options));
        } else {
          resolve({
            stdout: Buffer.concat(stdout).toString('utf8'),
            stderr: stderr.slice(-MAX_STDERR_CHARS),
            exitCode,
          });
        }
      });
    });
  }
}

function buildBaseEnv(options: GoCommandOptions): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(options.baseEnv ?? process.env)) {
    if (value !== undefined && !NOT_INHERITED.includes(key)) env[key] = value;
  }
  // A go command waiting for a password would hang until the deadline.
  env['GIT_TERMINAL_PROMPT'] = '0';
  env['GCM_INTERACTIVE'] = 'never';
  // Another toolchain would be downloaded from the network, outside any deadline we control.
  env['GOTOOLCHAIN'] = 'local';
  if (options.netrcPath !== undefined) env['NETRC'] = options.netrcPath;
  const extra = { ...options.env };
  const extraFlags = extra['GOFLAGS'];
  for (const key of NOT_INHERITED) delete extra[key];
  Object.assign(env, extra);
  env['GOPROXY'] = 'direct';
  env['GOFLAGS'] = ['-modcacherw', extraFlags ?? ''].join(' ').trim();
  env['GOWORK'] = 'off';
  env['GO111MODULE'] = 'on';
  return env;
}

function cancelled(options: GoRunOptions): ModuleError {
  return errors.cancelled(options.op, 'the caller gave up', {
    module: options.module,
    version: options.version,
  });
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
  /unrecognized import path .*(404|410)/i,
  /module source tree too large/i,
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
