import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCommandOrThrow } from '@modproxy/testing';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const LINES = 100;
/** Runs of each exit, one after the other (a loss showed in a run of four to eight that way). */
const RUNS = 30;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts the fixture service with `exitPath`, sends SIGTERM once it is ready (for the shutdown
 * exits), and resolves when both of its pipes ended: everything it wrote is in.
 */
function runOnce(main: string, exitPath: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main], {
      cwd: REPO_ROOT,
      env: { PATH: process.env['PATH'] ?? '', EXIT_PATH: exitPath, LINES: String(LINES) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (exitPath !== 'start-failure' && stdout.includes('ready\n') && !child.killed) child.kill('SIGTERM');
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The `line` entries a run logged, by number, and the messages of every log line. */
function logged(stdout: string): { numbers: number[]; messages: string[] } {
  const entries = stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg: string; i?: number });
  return {
    numbers: entries.filter((entry) => entry.msg === 'line').map((entry) => entry.i ?? -1),
    messages: entries.map((entry) => entry.msg),
  };
}

/**
 * The log lines written just before the process exits, through runService's real exits (a
 * failed start, a shutdown, a failed shutdown), all reach stdout: a fixture service
 * (src/testing/log-then-exit.ts, bundled as the apps are) logs 100 lines of 10 KB on its way
 * out, many times over.
 */
describe('runService: the last log lines reach stdout at exit', () => {
  let main: string;

  beforeAll(async () => {
    main = join(REPO_ROOT, 'tmp', 'test-bundles', 'runtime-exit-logs', 'log-then-exit.mjs');
    const script = pathToFileURL(join(REPO_ROOT, 'scripts', 'build-app.mjs')).href;
    const entry = join(REPO_ROOT, 'libs', 'runtime', 'src', 'testing', 'log-then-exit.ts');
    await runCommandOrThrow(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { bundle } = await import(${JSON.stringify(script)}); await bundle(${JSON.stringify(entry)}, ${JSON.stringify(main)});`,
      ],
      { cwd: REPO_ROOT, env: { PATH: process.env['PATH'] ?? '' } },
    );
  });

  it.each([
    ['start-failure', 1, 'failed to start: start failed on purpose'],
    ['shutdown', 0, undefined],
    ['shutdown-failure', 1, undefined],
  ])(
    `%s: every line logged before the exit is printed, in ${RUNS} runs (exit %i)`,
    async (exitPath, code, failure) => {
      const runs: Run[] = [];
      for (let run = 0; run < RUNS; run++) runs.push(await runOnce(main, exitPath));
      const expected = Array.from({ length: LINES }, (_, i) => i);
      const short = runs
        .map((run, index) => ({ index, count: logged(run.stdout).numbers.length }))
        .filter((run) => run.count !== LINES);
      expect(short, 'runs that printed fewer lines than they logged').toEqual([]);
      for (const run of runs) {
        expect(run.code).toBe(code);
        const { numbers, messages } = logged(run.stdout);
        expect(numbers).toEqual(expected);
        if (exitPath !== 'start-failure') expect(messages[0]).toBe('shutting down');
        // The failed shutdown's own report is the very last line before its exit.
        if (exitPath === 'shutdown-failure') expect(messages.at(-1)).toBe('shutdown failed');
        if (failure) expect(run.stderr).toContain(failure);
      }
    },
    120_000,
  );
});
