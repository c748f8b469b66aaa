import { projectTestConfig } from '../../vitest.shared.ts';

export default projectTestConfig({ globalSetup: ['src/test-support/global-setup.ts'] });
