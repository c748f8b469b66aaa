import { spawn } from 'node:child_process';
import { errors, type ModuleErrorOptions } from '@modproxy/errors';

export interface ProcessGroupOptions {
  cwd: string;
  env: Record<string, string>;
  /** From the start; then the whole process group (git, ssh and helpers with it) is killed. */
  timeoutMs: number;
  /** Killed once it has printed more than this on stdout. @default unbounded */
  maxStdoutBytes?: number;
  /** stderr beyond this is dropped, keeping the end, where a command says what failed. */
  maxStderrChars: number;
  /** Kills the group when it fires. */
  signal?: AbortSignal;
  /** For the error when it cannot be started: the operation and what it was about. */
  op: string;
  refs: ModuleErrorOptions;
}

/** How the command ended: by itself, or killed by the deadline, the signal or its output. */
export type ProcessGroupEnd = 'exited' | 'timeout' | 'cancelled' | 'output';

export interface ProcessGroupResult {
  end: ProcessGroupEnd;
  exitCode: number | null;
  /** What it printed on stdout (up to `maxStdoutBytes`). */
  stdout: Buffer;
  /** The end of its stderr. */
  stderr: string;
}

/**
 * Runs a command in its own process group (so that a deadline or a cancel kills everything it
 * started, not only the command), with no stdin, collecting its output. Resolves however it
 * ended, saying how; rejects only when it cannot be started (`internal`, with the spawn error).
 */
export function runProcessGroup(
  command: string,
  args: readonly string[],
  options: ProcessGroupOptions,
): Promise<ProcessGroupResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const maxStdoutBytes = options.maxStdoutBytes ?? Number.POSITIVE_INFINITY;
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = '';
    let killedBy: Exclude<ProcessGroupEnd, 'exited'> | undefined;
    const killGroup = (reason: Exclude<ProcessGroupEnd, 'exited'>): void => {
      killedBy ??= reason;
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // The group is already gone.
      }
    };
    child.stdout.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxStdoutBytes) killGroup('output');
      else stdout.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      if (stderr.length > 2 * options.maxStderrChars) stderr = stderr.slice(-options.maxStderrChars);
    });
    const timer = setTimeout(() => killGroup('timeout'), options.timeoutMs);
    const onAbort = (): void => killGroup('cancelled');
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    const cleanUp = (): void => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    child.once('error', (error) => {
      cleanUp();
      reject(
        errors.internal(options.op, `cannot run ${command}: ${error.message}`, {
          ...options.refs,
          cause: error,
        }),
      );
    });
    child.once('close', (exitCode) => {
      cleanUp();
      resolve({
        end: killedBy ?? 'exited',
        exitCode,
        stdout: Buffer.concat(stdout),
        stderr: stderr.slice(-options.maxStderrChars),
      });
    });
  });
}
