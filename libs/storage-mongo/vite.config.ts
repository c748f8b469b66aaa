import { projectTestConfig } from '../../vitest.shared';

// One FerretDB (MongoDB wire protocol over SQLite) for the whole run, built on first use by
// scripts/ensure-ferretdb.sh; its teardown stops the server whether the tests pass or fail.
export default projectTestConfig({
  globalSetup: ['src/testing/ferretdb-global-setup.ts'],
});
