import { ConfigError } from '@modproxy/config';
import { createLogger } from '@modproxy/observability';
import { loadLathensConfig, type LathensConfig } from './config';
import { startLathens } from './server';

async function main(): Promise<void> {
  let config: LathensConfig;
  try {
    config = loadLathensConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`lathens: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger({ service: 'lathens', level: config.LOG_LEVEL });
  const lathens = await startLathens(config, logger);
  logger.info(
    {
      http: lathens.httpUrl,
      grpc: lathens.grpcAddress,
      upstream: config.UPSTREAM,
      mode: config.NETWORK_MODE,
      worker: config.RUN_WORKER,
    },
    'lathens listening',
  );

  const stop = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'shutting down');
    lathens.shutdown().then(
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
  process.stderr.write(
    `lathens: failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
