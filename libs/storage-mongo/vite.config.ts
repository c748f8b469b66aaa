import { projectTestConfig } from '../../vitest.shared';

// One PostgreSQL and one FerretDB on it (MongoDB wire protocol) for the whole run; FerretDB is
// built on first use by scripts/ensure-ferretdb.sh. The teardown stops both whether the tests
// pass or fail.
export default projectTestConfig({
  globalSetup: ['src/testing/ferretdb-global-setup.ts'],
});
