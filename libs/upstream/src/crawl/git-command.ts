import { tmpdir } from 'node:os';
import { abortedByDeadline, errors } from '@modproxy/errors';
import { vcsEnvironment } from '../go-command';
import { runProcessGroup } from '../process-group';

export interface GitCommandOptions {
  /** The git binary, a name on PATH or a path (GIT_BINARY). @default 'git' */
  gitBinary?: string;
  /** Deadline of one git command, from its start; its whole process group is killed after it. @default 30000 */
  timeoutMs?: number;
  /** A command printing more than this on stdout is killed and fails. @default 32 MiB */
  maxOutputBytes?: number;
  /** A netrc file, passed as NETRC (as to the go command). */
  netrcPath?: string;
  /** More environment on top of what is inherited (tests point git at fixture repositories). */
  env?: Record<string, string>;
  /**
   * The server's environment, of which git gets only the allow list the go command gets
   * (PATH, HOME, GIT_* settings, ssh, CA files, HTTP proxies, the netrc); never its secrets.
   * @default process.env
   */
  baseEnv?: Record<string, string | undefined>;
}

export interface GitRunOptions {
  /** For errors: the operation and the module the command is about. */
  op: string;
  module?: string;
  signal?: AbortSignal;
}

export interface GitRunResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
}

const MiB = 1024 * 1024;
const MAX_STDERR_CHARS = 16 * 1024;

/**
 * Runs git for listing (never to clone): an allow-listed environment, no prompts, a neutral
 * working directory (no repository's config applies), a deadline that kills the process group,
 * and bounded output.
 */
export class GitCommand {
  readonly gitBinary: string;
  private readonly timeoutMs: number;
  private readonly maxOutputBytes: number;
  private readonly env: Record<string, string>;

  constructor(options: GitCommandOptions = {}) {
    this.gitBinary = options.gitBinary ?? 'git';
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxOutputBytes = options.maxOutputBytes ?? 32 * MiB;
    const env = vcsEnvironment(options.baseEnv);
    Object.assign(env, options.env);
    if (options.netrcPath !== undefined) env['NETRC'] = options.netrcPath;
    // No prompts whatever the tests' env says; a repository's own settings never apply to
    // ls-remote of a URL from a neutral directory.
    env['GIT_TERMINAL_PROMPT'] = '0';
    env['GCM_INTERACTIVE'] = 'never';
    env['GIT_SSH_COMMAND'] ??= 'ssh -o BatchMode=yes';
    this.env = env;
  }

  /** The environment every git command gets. */
  environment(): Record<string, string> {
    return { ...this.env };
  }

  /**
   * Runs `git <args>`. Resolves with the output whatever the exit code; rejects with
   * `timeout` (the deadline, or a signal fired by a deadline), `cancelled`, `bad-gateway`
   * (too much output) or `internal` (git cannot be started).
   */
  async run(args: readonly string[], options: GitRunOptions): Promise<GitRunResult> {
    const context = { module: options.module };
    if (options.signal?.aborted) throw this.abortError(options);
    const ran = await runProcessGroup(this.gitBinary, args, {
      cwd: tmpdir(),
      env: this.env,
      timeoutMs: this.timeoutMs,
      maxStdoutBytes: this.maxOutputBytes,
      maxStderrChars: MAX_STDERR_CHARS,
      ...(options.signal ? { signal: options.signal } : {}),
      op: options.op,
      refs: context,
    });
    switch (ran.end) {
      case 'timeout':
        throw errors.timeout(
          options.op,
          `git ${args[0] ?? ''} did not finish within ${this.timeoutMs} ms`,
          context,
        );
      case 'cancelled':
        throw this.abortError(options);
      case 'output':
        throw errors.badGateway(
          options.op,
          `git ${args[0] ?? ''} printed more than ${this.maxOutputBytes} bytes`,
          context,
        );
      case 'exited':
        return { stdout: ran.stdout.toString('utf8'), stderr: ran.stderr, exitCode: ran.exitCode };
    }
  }

  private abortError(options: GitRunOptions) {
    const context = { module: options.module };
    if (options.signal && abortedByDeadline(options.signal))
      return errors.timeout(options.op, 'timed out listing tags from version control', context);
    return errors.cancelled(options.op, 'the caller gave up', context);
  }
}
