import { projectTestConfig } from '../../vitest.shared.ts';

export default projectTestConfig({
  globalSetup: ['../../libs/storage-mongo/src/testing/ferretdb-global-setup.ts'],
});
