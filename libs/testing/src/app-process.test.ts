import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppProcess } from './app-process';
import { createTempDir, removeDir } from './temp-dir';

describe('startAppProcess', () => {
  let dir: string;
  let main: string;

  beforeAll(async () => {
    dir = await createTempDir('app-process-');
    main = join(dir, 'main.mjs');
    // An app whose last line comes after its own exit, as a cluster worker's does: on SIGTERM it
    // leaves a helper on its stdout that prints once the app is gone (its stdin ends then).
    await writeFile(
      main,
      [
        "import { spawn } from 'node:child_process';",
        "process.on('SIGTERM', () => {",
        '  const helper = spawn(',
        '    process.execPath,',
        `    ['-e', "process.stdin.resume(); process.stdin.on('end', () => process.stdout.write('app stopped\\\\n'))"],`,
        "    { stdio: ['pipe', 'inherit', 'inherit'] },",
        '  );',
        "  helper.on('spawn', () => process.exit(0));",
        '});',
        "process.stdout.write('app ready\\n');",
        'setInterval(() => undefined, 1000);',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await removeDir(dir);
  });

  it('stop() resolves once everything the process printed is read, its last line included', async () => {
    for (let run = 0; run < 5; run += 1) {
      const app = await startAppProcess(main, {
        env: { PATH: process.env['PATH'] ?? '' },
        ready: /app ready/,
      });
      expect(await app.stop()).toBe(0);
      expect(app.stdout()).toBe('app ready\napp stopped\n');
    }
  });
});
