import { fileURLToPath } from 'node:url';
import { defineConfig, type ViteUserConfig } from 'vitest/config';

/** Refuses (and fails the test on) any DNS query or connection that would leave loopback. */
const HERMETIC_SETUP = fileURLToPath(new URL('./libs/testing/src/vitest-setup.ts', import.meta.url));

/**
 * One vitest configuration for every project: path aliases from tsconfig.base.json,
 * never watch mode, generous timeouts for tests that run the real `go` command, and a
 * hermetic network (see libs/testing/src/hermetic-network.ts).
 */
export function projectTestConfig(overrides: ViteUserConfig['test'] = {}): ViteUserConfig {
  const { setupFiles = [], ...rest } = overrides;
  return defineConfig({
    resolve: { tsconfigPaths: true },
    test: {
      watch: false,
      include: ['src/**/*.test.ts'],
      testTimeout: 60_000,
      hookTimeout: 120_000,
      setupFiles: [HERMETIC_SETUP, ...(Array.isArray(setupFiles) ? setupFiles : [setupFiles])],
      ...rest,
    },
  });
}
