import { projectTestConfig } from '../../vitest.shared.ts';

/**
 * The suites that run the proxy as processes (or can, see src/test-support/test-proxy.ts) run a
 * second time with WORKERS=2: a primary and two workers behind one port, the one-fetch-per-version
 * test among them.
 */
const SUITES_WITH_WORKERS = [
  'src/proxy.e2e.test.ts',
  'src/main.e2e.test.ts',
  'src/hostile-upstream.e2e.test.ts',
  'src/request-fuzz.e2e.test.ts',
  'src/go-environment.e2e.test.ts',
];

const shared = projectTestConfig();

// Projects that extend the root would add their `include` to the root's (arrays are merged),
// so each is the shared configuration with its own name.
export default {
  ...shared,
  test: {
    ...shared.test,
    projects: [
      { ...shared, test: { ...shared.test, name: 'proxy' } },
      {
        ...shared,
        test: {
          ...shared.test,
          name: 'proxy WORKERS=2',
          include: SUITES_WITH_WORKERS,
          env: { PROXY_TEST_WORKERS: '2' },
        },
      },
    ],
  },
};
