import { runCommandOrThrow } from '@modproxy/testing';
import { APPS, REPO_ROOT } from './repo-paths';

/** The apps' bundles in dist/, built the way `npm run build` and the images' build stage do. */
export default async function setup(): Promise<void> {
  for (const app of APPS) {
    await runCommandOrThrow(process.execPath, ['scripts/build-app.mjs', app], { cwd: REPO_ROOT });
  }
}
