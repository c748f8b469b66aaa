import { join } from 'node:path';
import { runCommandOrThrow } from '@modproxy/testing';

const root = join(__dirname, '..', '..', '..', '..');

/** crathens and lathens run as processes in these tests: bundle them once, as `npm run build` does. */
export default async function setup(): Promise<void> {
  for (const app of ['crathens', 'lathens']) {
    await runCommandOrThrow(process.execPath, [join(root, 'scripts', 'build-app.mjs'), app], { cwd: root });
  }
}
