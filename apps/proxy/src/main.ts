import { ConfigError } from '@modproxy/config';
import { createLogger } from '@modproxy/observability';
import { loadProxyConfig, type ProxyConfig } from './config';
import { startProxy } from './server';

async function main(): Promise<void> {
  let config: ProxyConfig;
  try {
    config = loadProxyConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`proxy: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger({ service: 'proxy', level: config.LOG_LEVEL });
  const proxy = await startProxy(config, logger);
  logger.info(
    { url: proxy.url, storage: config.STORAGE_TYPE, upstream: config.UPSTREAM, mode: config.DOWNLOAD_MODE },
    'proxy listening',
  );
  process.stdout.write(`\nGo module proxy ready. Use it with:\n\n  export GOPROXY=${proxy.url}\n\n`);

  const stop = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'shutting down');
    proxy.shutdown().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`proxy: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
