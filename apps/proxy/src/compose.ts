import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ModuleService } from '@modproxy/module-service';
import { createHttpMetrics, Counter, type Logger } from '@modproxy/observability';
import { DiskStorage, MemoryStorage, type ModuleStorage } from '@modproxy/storage';
import { GrpcStorage } from '@modproxy/storage-grpc';
import { UpstreamVersions } from '@modproxy/versions';
import {
  createUpstreamChain,
  DirectUpstream,
  GoproxyUpstream,
  parseGoproxyList,
  type Upstream,
} from '@modproxy/upstream';
import type { ProxyConfig } from './config';
import { createProxyApp } from './http/proxy-app';

export interface ComposeOverrides {
  /** Extra environment for the go command (tests point git at fixture repositories). */
  goEnv?: Record<string, string>;
  storage?: ModuleStorage;
}

export interface ProxyComposition {
  app: ReturnType<typeof createProxyApp>;
  service: ModuleService;
  storage: ModuleStorage;
  upstream: Upstream;
  beginShutdown(): void;
  close(): Promise<void>;
}

/** The composition root: configuration in, a wired proxy out. Same code paths for every adapter. */
export async function composeProxy(
  config: ProxyConfig,
  logger: Logger,
  overrides: ComposeOverrides = {},
): Promise<ProxyComposition> {
  const storage = overrides.storage ?? (await createStorage(config));
  const upstream = createUpstream(config, overrides.goEnv ?? {});
  const metrics = createHttpMetrics('modproxy');
  const fetches = new Counter({
    name: 'modproxy_fetches_total',
    help: 'Module versions fetched from upstream, by result',
    labelNames: ['result'] as const,
    registers: [metrics.registry],
  });
  const storageFallbacks = new Counter({
    name: 'modproxy_storage_fallbacks_total',
    help: 'list/latest answers served from storage because upstream failed',
    labelNames: ['operation'] as const,
    registers: [metrics.registry],
  });
  const versions = new UpstreamVersions({
    storage,
    ...(config.DOWNLOAD_MODE === 'none' ? {} : { upstream }),
    timeoutMs: config.UPSTREAM_TIMEOUT_MS,
    onFallback: (module, operation, error) => {
      storageFallbacks.inc({ operation });
      logger.warn(
        { module, operation, kind: error.kind, err: error.message },
        'upstream failed; served from storage',
      );
    },
  });
  const service = new ModuleService({
    storage,
    upstream,
    versions,
    downloadMode: config.DOWNLOAD_MODE,
    fetchTimeoutMs: config.FETCH_TIMEOUT_MS,
    metadataTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
    events: {
      fetched: (module, version, durationMs) => {
        fetches.inc({ result: 'stored' });
        logger.info({ module, version, durationMs }, 'fetched and stored');
      },
      fetchFailed: (module, version, error) => {
        fetches.inc({ result: error.kind });
        logger.warn({ module, version, kind: error.kind, err: error.message }, 'fetch failed');
      },
    },
  });
  let shuttingDown = false;
  const app = createProxyApp({
    service,
    logger,
    metrics,
    isShuttingDown: () => shuttingDown,
    readiness: async () => {
      await storage.exists('modproxy.invalid/readiness', 'v0.0.0', { signal: AbortSignal.timeout(2_000) });
    },
  });
  return {
    app,
    service,
    storage,
    upstream,
    beginShutdown: () => {
      shuttingDown = true;
    },
    close: async () => {
      await versions.close();
      await storage.close();
    },
  };
}

async function createStorage(config: ProxyConfig): Promise<ModuleStorage> {
  switch (config.STORAGE_TYPE) {
    case 'memory':
      return new MemoryStorage();
    case 'disk':
      return DiskStorage.open({ root: resolve(config.STORAGE_DIR) });
    case 'grpc':
      return new GrpcStorage({
        url: config.STORAGE_GRPC_URL ?? '',
        ...(config.STORAGE_TOKEN ? { token: config.STORAGE_TOKEN } : {}),
        tls:
          config.STORAGE_TLS || config.STORAGE_TLS_CA_FILE
            ? { ...(config.STORAGE_TLS_CA_FILE ? { ca: readFileSync(config.STORAGE_TLS_CA_FILE) } : {}) }
            : false,
      });
  }
}

function createUpstream(config: ProxyConfig, goEnv: Record<string, string>): Upstream {
  const env: Record<string, string> = { ...goEnv };
  for (const key of ['GOSUMDB', 'GONOSUMDB', 'GOPRIVATE', 'GOINSECURE'] as const) {
    const value = config[key];
    if (value !== undefined) env[key] = value;
  }
  return createUpstreamChain(parseGoproxyList(config.UPSTREAM), {
    direct: () =>
      new DirectUpstream({
        goBinary: config.GO_BINARY,
        env,
        concurrency: config.GO_CONCURRENCY,
        timeoutMs: config.FETCH_TIMEOUT_MS,
        ...(config.NETRC_PATH ? { netrcPath: config.NETRC_PATH } : {}),
        ...(config.GO_WORK_DIR ? { workDir: config.GO_WORK_DIR } : {}),
      }),
    goproxy: (url) =>
      new GoproxyUpstream({
        url,
        timeoutMs: config.UPSTREAM_TIMEOUT_MS,
        zipTimeoutMs: config.FETCH_TIMEOUT_MS,
        ...(config.UPSTREAM_AUTHORIZATION
          ? { headers: { authorization: config.UPSTREAM_AUTHORIZATION } }
          : {}),
      }),
  });
}
