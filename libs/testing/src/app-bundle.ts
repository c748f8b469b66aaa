import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { runCommandOrThrow } from './run-command';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * Bundles `apps/<app>/src/main.ts` the way `npm run build` does (scripts/build-app.mjs), into
 * `tmp/test-bundles/<label>/main.js`: a file of the caller's own, so test files running in
 * parallel never write one bundle at the same time. Resolves with the bundle's path.
 */
export async function bundleApp(app: string, label: string): Promise<string> {
  const entry = join(REPO_ROOT, 'apps', app, 'src', 'main.ts');
  const outfile = join(REPO_ROOT, 'tmp', 'test-bundles', label, 'main.js');
  const script = pathToFileURL(join(REPO_ROOT, 'scripts', 'build-app.mjs')).href;
  await runCommandOrThrow(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { bundle } = await import(${JSON.stringify(script)}); await bundle(${JSON.stringify(entry)}, ${JSON.stringify(outfile)});`,
    ],
    { cwd: REPO_ROOT, env: { PATH: process.env['PATH'] ?? '' } },
  );
  return outfile;
}
