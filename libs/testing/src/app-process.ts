import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { hermeticChildOptions } from './hermetic-children';

export interface AppProcess {
  child: ChildProcess;
  /** The match of `ready` against what the process printed. */
  match: RegExpExecArray;
  stdout(): string;
  stderr(): string;
  /**
   * SIGTERM, then waits for the exit and the end of its output (stdout and stderr closed, so
   * {@link stdout} holds everything it printed); resolves with the exit code (SIGKILL after
   * `graceMs`).
   */
  stop(graceMs?: number): Promise<number | null>;
}

export interface StartAppProcessOptions {
  /** The complete environment (nothing is inherited but what you pass). */
  env: Record<string, string>;
  /** Arguments after the script. */
  args?: readonly string[];
  /** What stdout prints once the process serves, e.g. `/export GOPROXY=(\S+)/`. */
  ready: RegExp;
  cwd?: string;
  /** Default 30000 ms. */
  startTimeoutMs?: number;
  /** More modules for `node --import`, loaded before the app's instrument entry. Default: none. */
  preload?: readonly string[];
  /**
   * Node's options before the script, exactly (a deployment file's command, see
   * apps/deploy-tests), instead of {@link appNodeArgs}' instrument entry and source maps.
   */
  nodeArgs?: readonly string[];
}

/**
 * The command line an app is started with, as everywhere else (README, npm start, the
 * images): `node --import <instrument.js> <main.js>`, the tracing entry being the
 * `instrument.js` that the build puts beside `main.js`.
 */
export function appNodeArgs(main: string): string[] {
  const instrument = join(dirname(main), 'instrument.js');
  return [...(existsSync(instrument) ? ['--import', instrument] : []), '--enable-source-maps', main];
}

/**
 * Starts a built app (`node --import <instrument.js> <main>`, see {@link appNodeArgs}) and
 * waits until it says it is ready. A process that exits first or stays silent too long rejects
 * with what it printed. Stopped by its own pid only.
 */
export async function startAppProcess(main: string, options: StartAppProcessOptions): Promise<AppProcess> {
  // Under the tests, the app gets their hermetic network (see hermetic-children.ts).
  const hermetic = hermeticChildOptions();
  const preload = (options.preload ?? []).flatMap((file) => ['--import', file]);
  const command = options.nodeArgs ? [...options.nodeArgs, main] : appNodeArgs(main);
  const args = [...hermetic.execArgv, ...preload, ...command, ...(options.args ?? [])];
  const child = spawn(process.execPath, args, {
    cwd: options.cwd,
    env: { ...options.env, ...hermetic.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  // 'exit' can come before the last of the output is read (and a cluster worker sharing the
  // pipes prints after its primary exited): 'close' comes once both pipes ended.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const stop = async (graceMs = 10_000): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    // A descendant that outlives the process and keeps its pipes open must not hold this up.
    const abandon = () => {
      const timer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, graceMs);
      void closed.finally(() => clearTimeout(timer));
    };
    if (child.exitCode !== null || child.signalCode !== null) abandon();
    else child.once('exit', abandon);
    await closed;
    clearTimeout(kill);
    return child.exitCode;
  };
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop(0);
      reject(new Error(`${main} did not become ready in time:\n${out}\n${err}`));
    }, options.startTimeoutMs ?? 30_000);
    const onData = () => {
      const found = options.ready.exec(out);
      if (!found) return;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      resolve(found);
    };
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`${main} exited with ${String(code)} before it was ready:\n${out}\n${err}`));
    };
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
  return { child, match, stdout: () => out, stderr: () => err, stop };
}
