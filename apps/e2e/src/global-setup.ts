import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { runCommandOrThrow, startRedisServer } from '@modproxy/testing';
import { ensureFerretDb, startFerretDb, startPostgresServer } from '@modproxy/storage-mongo/testing';

export const root = join(__dirname, '..', '..', '..');

declare module 'vitest' {
  export interface ProvidedContext {
    mongoUri: string;
    /** The PostgreSQL (superuser URL) behind the FerretDB of `mongoUri`. */
    postgresUrl: string;
    redisUrl: string;
  }
}

/**
 * Builds the apps the way `npm start` does, and starts one MongoDB-wire server (FerretDB on
 * PostgreSQL; every test uses a database of its own) and one Redis for all tests.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  for (const app of ['proxy', 'storage', 'lathens', 'crathens']) {
    await runCommandOrThrow(process.execPath, [join(root, 'scripts', 'build-app.mjs'), app], { cwd: root });
  }
  await ensureFerretDb();
  const postgres = await startPostgresServer();
  const mongo = await startFerretDb({ postgresUrl: postgres.url }).catch(async (error: unknown) => {
    await postgres.stop();
    throw error;
  });
  project.provide('mongoUri', mongo.uri);
  project.provide('postgresUrl', postgres.url);
  const redis = await startRedisServer();
  project.provide('redisUrl', redis.url);
  return async () => {
    await redis.stop();
    await mongo.stop();
    await postgres.stop();
  };
}
