import type { TestProject } from 'vitest/node';
import { ensureFerretDb, startFerretDb } from './ferretdb-server';
import { startPostgresServer } from './postgres-server';

declare module 'vitest' {
  export interface ProvidedContext {
    /** MongoDB URI of the FerretDB that the global setup started for this test run. */
    ferretDbUri: string;
    /**
     * The PostgreSQL (superuser URL) behind that FerretDB: a test that needs a FerretDB of its
     * own (to stop it) passes it as `postgresUrl` and gets a fresh database on this server.
     */
    postgresUrl: string;
  }
}

/**
 * Vitest globalSetup: builds FerretDB if needed, starts one PostgreSQL and one FerretDB on it
 * for the whole run and hands their URLs to the tests (`inject('ferretDbUri')`). Each test keeps
 * to a database of its own. The returned teardown stops both, and vitest runs teardown whether
 * the tests passed or failed.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await ensureFerretDb();
  const postgres = await startPostgresServer();
  try {
    const server = await startFerretDb({ postgresUrl: postgres.url });
    project.provide('ferretDbUri', server.uri);
    project.provide('postgresUrl', postgres.url);
    return async () => {
      await server.stop();
      await postgres.stop();
    };
  } catch (error) {
    await postgres.stop();
    throw error;
  }
}
