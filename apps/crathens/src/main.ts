import { runService } from '@modproxy/runtime';
import { loadCrathensConfig } from './config';
import { startCrathens } from './server';

runService({
  name: 'crathens',
  loadConfig: loadCrathensConfig,
  start: async (config, logger) => {
    const crathens = await startCrathens(config, logger);
    logger.info(
      {
        admin: crathens.adminUrl,
        prefix: config.QUEUE_PREFIX,
        fetchConcurrency: config.FETCH_CONCURRENCY,
        workers: crathens.composition.components.map((component) => component.name),
      },
      'crathens running',
    );
    return {
      banner: `crathens running: admin ${crathens.adminUrl}`,
      shutdown: crathens.shutdown,
    };
  },
});
