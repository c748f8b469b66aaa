import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { runCommandOrThrow } from '@modproxy/testing';
import { ensureFerretDb, startFerretDb } from '@modproxy/storage-mongo/testing';

export const root = join(__dirname, '..', '..', '..');

declare module 'vitest' {
  export interface ProvidedContext {
    mongoUri: string;
  }
}

/** Builds the apps the way `npm start` and the images do, and starts one MongoDB-wire server for all tests. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  for (const app of ['proxy', 'storage']) {
    await runCommandOrThrow(process.execPath, [join(root, 'scripts', 'build-app.mjs'), app], { cwd: root });
  }
  await ensureFerretDb();
  const mongo = await startFerretDb();
  project.provide('mongoUri', mongo.uri);
  return () => mongo.stop();
}
