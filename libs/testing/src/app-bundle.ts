import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { runCommandOrThrow } from './run-command';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * Bundles `apps/<app>/src/main.ts` the way `npm run build` does (scripts/build-app.mjs), into
 * `tmp/test-bundles/<label>/main.js`, with the app's tracing entry as `instrument.js` beside it
 * (startAppProcess loads it): files of the caller's own, so test files running in parallel
 * never write one bundle at the same time. Resolves with the main bundle's path.
 */
export async function bundleApp(app: string, label: string): Promise<string> {
  const outDir = join(REPO_ROOT, 'tmp', 'test-bundles', label);
  const script = pathToFileURL(join(REPO_ROOT, 'scripts', 'build-app.mjs')).href;
  await runCommandOrThrow(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { bundleAppTo } = await import(${JSON.stringify(script)}); await bundleAppTo(${JSON.stringify(app)}, ${JSON.stringify(outDir)});`,
    ],
    { cwd: REPO_ROOT, env: { PATH: process.env['PATH'] ?? '' } },
  );
  return join(outDir, 'main.js');
}
