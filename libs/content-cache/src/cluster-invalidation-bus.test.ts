import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTempDir, removeDir, runCommandOrThrow, waitUntil } from '@modproxy/testing';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * Purges across node:cluster workers, with real processes: the fixture program's primary relays,
 * its three workers subscribe (src/testing/cluster-fixture.ts, bundled as the apps are).
 */
describe('purges reach every node:cluster worker (IPC through the primary)', () => {
  let dir: string;
  let program: ChildProcessWithoutNullStreams;
  let output = '';

  beforeAll(async () => {
    dir = await createTempDir('content-cache-cluster-');
    const bundle = join(dir, 'cluster-fixture.mjs');
    const script = pathToFileURL(join(REPO_ROOT, 'scripts', 'build-app.mjs')).href;
    const entry = join(REPO_ROOT, 'libs', 'content-cache', 'src', 'testing', 'cluster-fixture.ts');
    await runCommandOrThrow(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { bundle } = await import(${JSON.stringify(script)}); await bundle(${JSON.stringify(entry)}, ${JSON.stringify(bundle)});`,
      ],
      { cwd: REPO_ROOT, env: { PATH: process.env['PATH'] ?? '' } },
    );
    program = spawn(process.execPath, [bundle], { cwd: dir, env: { PATH: process.env['PATH'] ?? '' } });
    program.stdout.on('data', (data: Buffer) => (output += data.toString()));
    program.stderr.on('data', (data: Buffer) => (output += data.toString()));
    await waitUntil(() => output.includes('ready\n'), {
      what: 'three workers subscribed',
      timeoutMs: 30_000,
    });
  });

  afterAll(async () => {
    if (program && program.exitCode === null) {
      const exited = new Promise((resolve) => program.once('exit', resolve));
      program.stdin.write('exit\n');
      await exited;
    }
    await removeDir(dir);
  });

  const heard = (ref: string) =>
    output
      .split('\n')
      .filter((line) => line.endsWith(` ${ref}`))
      .map((line) => line.split(' ')[1])
      .sort();

  it('relays a purge made in one worker to every worker, itself included', async () => {
    program.stdin.write('worker 1 example.com/a v1.0.0\n');
    await waitUntil(() => heard('example.com/a@v1.0.0').length === 3, { what: 'every worker hears it' });
    expect(heard('example.com/a@v1.0.0')).toEqual(['0', '1', '2']);
  });

  it('sends the primary’s own purges (its admin port) to every worker', async () => {
    program.stdin.write('primary example.com/b v2.0.0\n');
    await waitUntil(() => heard('example.com/b@v2.0.0').length === 3, { what: 'every worker hears it' });
    expect(heard('example.com/b@v2.0.0')).toEqual(['0', '1', '2']);
  });
});
