import { spawn } from 'node:child_process';

export interface RunCommandOptions {
  cwd?: string;
  /** The whole environment of the child: nothing is inherited from this process. */
  env?: Record<string, string>;
  signal?: AbortSignal;
  /** Bytes written to the child's stdin, if any. */
  input?: string;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  /** The exit code, or `null` when the process was killed by a signal. */
  exitCode: number | null;
}

/**
 * Runs a program to completion and collects its output; it never rejects for a non-zero exit
 * (tests assert on `exitCode`). On abort the whole process group is killed, so helpers the
 * program started (git under the go command) do not outlive the test.
 */
export async function runCommand(
  file: string,
  args: readonly string[],
  options: RunCommandOptions = {},
): Promise<CommandResult> {
  options.signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? {},
      detached: true,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    const killGroup = (): void => {
      if (child.pid === undefined || child.exitCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const onAbort = (): void => killGroup();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (error) => {
      options.signal?.removeEventListener('abort', onAbort);
      reject(error);
    });
    child.once('close', (exitCode) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (options.signal?.aborted) {
        reject(options.signal.reason instanceof Error ? options.signal.reason : new Error('aborted'));
        return;
      }
      resolve({
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        exitCode,
      });
    });
    if (child.stdin) {
      // A child that exits without reading its input must not crash the test with EPIPE.
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.input);
    }
  });
}

/** Like `runCommand`, but rejects with the command's stderr when it exits non-zero. */
export async function runCommandOrThrow(
  file: string,
  args: readonly string[],
  options: RunCommandOptions = {},
): Promise<CommandResult> {
  const result = await runCommand(file, args, options);
  if (result.exitCode !== 0) {
    throw new Error(
      `${file} ${args.join(' ')} exited with ${String(result.exitCode)}: ${result.stderr.trim() || result.stdout.trim()}`,
    );
  }
  return result;
}
