import { projectTestConfig } from '../../vitest.shared.ts';

export default projectTestConfig({ globalSetup: ['src/global-setup.ts'] });
