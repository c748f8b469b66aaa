import { tmpdir } from 'node:os';
import { createLogger } from '@modproxy/observability';
import { bundleApp, startAppProcess } from '@modproxy/testing';
import { loadProxyConfig } from '../config';
import { startProxy } from '../server';

/**
 * How many processes the proxy's e2e suites serve with: `PROXY_TEST_WORKERS` (the proxy's test
 * target runs them once as they are and once more with 2, see vite.config.ts). With 1 the proxy
 * runs in the test process; with more, the built bundle runs as a process with `WORKERS` set, a
 * primary and its workers.
 */
export const TEST_WORKERS = Number(process.env['PROXY_TEST_WORKERS'] ?? '1');

/** `WORKERS` for a proxy a test starts as a process itself: the suite's worker count. */
export const testWorkersEnv = (): Record<string, string> =>
  TEST_WORKERS > 1 ? { WORKERS: String(TEST_WORKERS) } : {};

export interface TestProxy {
  url: string;
  /** Graceful shutdown; rejects when a process did not exit 0. */
  shutdown(): Promise<void>;
}

const silent = createLogger({ service: 'proxy-test', level: 'silent' });
const bundles = new Map<string, Promise<string>>();

/**
 * The proxy a suite runs against, with `env` as its configuration and `goEnv` reaching the go
 * command it runs (the fixture repositories): in process for one worker, as `WORKERS` processes
 * otherwise.
 */
export async function startTestProxy(
  env: Record<string, string>,
  goEnv: Record<string, string>,
  label: string,
): Promise<TestProxy> {
  if (TEST_WORKERS <= 1) {
    const config = loadProxyConfig({ env: { PORT: '0', LOG_LEVEL: 'silent', ...env } });
    const proxy = await startProxy(config, silent, { goEnv });
    return { url: proxy.url, shutdown: proxy.shutdown };
  }
  let bundle = bundles.get(label);
  if (!bundle) {
    bundle = bundleApp('proxy', `${label}-${process.pid}`);
    bundles.set(label, bundle);
  }
  const proxy = await startAppProcess(await bundle, {
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? tmpdir(),
      TMPDIR: tmpdir(),
      PORT: '0',
      LOG_LEVEL: 'warn',
      ...goEnv,
      ...env,
      WORKERS: String(TEST_WORKERS),
    },
    ready: /export GOPROXY=(\S+)/,
  });
  return {
    url: proxy.match[1] ?? '',
    shutdown: async () => {
      const code = await proxy.stop();
      if (code !== 0) throw new Error(`the proxy exited with ${String(code)}:\n${proxy.stderr()}`);
    },
  };
}
