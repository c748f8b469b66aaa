import { defineConfig, type ViteUserConfig } from 'vitest/config';

/**
 * One vitest configuration for every project: path aliases from tsconfig.base.json,
 * never watch mode, generous timeouts for tests that run the real `go` command.
 */
export function projectTestConfig(overrides: ViteUserConfig['test'] = {}): ViteUserConfig {
  return defineConfig({
    resolve: { tsconfigPaths: true },
    test: {
      watch: false,
      include: ['src/**/*.test.ts'],
      testTimeout: 60_000,
      hookTimeout: 120_000,
      ...overrides,
    },
  });
}
