import { runService } from '@modproxy/runtime';
import { formatGoproxyList, parseGoproxyList } from '@modproxy/upstream';
import { loadLathensConfig } from './config';
import { startLathens } from './server';

runService({
  name: 'lathens',
  loadConfig: loadLathensConfig,
  start: async (config, logger) => {
    const lathens = await startLathens(config, logger);
    logger.info(
      {
        http: lathens.httpUrl,
        grpc: lathens.grpcAddress,
        upstream: formatGoproxyList(parseGoproxyList(config.UPSTREAM)),
        mode: config.NETWORK_MODE,
        worker: config.RUN_WORKER,
      },
      'lathens listening',
    );
    return {
      banner: `lathens listening: grpc ${lathens.grpcAddress} http ${lathens.httpUrl}`,
      shutdown: lathens.shutdown,
    };
  },
});
