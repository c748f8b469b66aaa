import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { runCommandOrThrow, startRedisServer } from '@modproxy/testing';
import { ensureFerretDb, startFerretDb } from '@modproxy/storage-mongo/testing';

export const root = join(__dirname, '..', '..', '..');

declare module 'vitest' {
  export interface ProvidedContext {
    mongoUri: string;
    redisUrl: string;
  }
}

/** Builds the apps the way `npm start` does, and starts one MongoDB-wire server and one Redis for all tests. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  for (const app of ['proxy', 'storage', 'lathens', 'crathens']) {
    await runCommandOrThrow(process.execPath, [join(root, 'scripts', 'build-app.mjs'), app], { cwd: root });
  }
  await ensureFerretDb();
  const mongo = await startFerretDb();
  project.provide('mongoUri', mongo.uri);
  const redis = await startRedisServer();
  project.provide('redisUrl', redis.url);
  return async () => {
    await redis.stop();
    await mongo.stop();
  };
}
