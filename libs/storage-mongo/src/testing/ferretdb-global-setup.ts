import type { TestProject } from 'vitest/node';
import { ensureFerretDb, startFerretDb } from './ferretdb-server';

declare module 'vitest' {
  export interface ProvidedContext {
    /** MongoDB URI of the FerretDB that the global setup started for this test run. */
    ferretDbUri: string;
  }
}

/**
 * Vitest globalSetup: builds FerretDB if needed, starts one server for the whole run and hands
 * its URI to the tests (`inject('ferretDbUri')`). The returned teardown stops it, and vitest
 * runs teardown whether the tests passed or failed.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await ensureFerretDb();
  const server = await startFerretDb();
  project.provide('ferretDbUri', server.uri);
  return () => server.stop();
}
