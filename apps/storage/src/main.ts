import { runService } from '@modproxy/runtime';
import { loadStorageConfig } from './config';
import { startStorageService } from './service';

runService({
  name: 'storage',
  loadConfig: loadStorageConfig,
  start: async (config, logger) => {
    const service = await startStorageService(config, logger);
    logger.info(
      { grpcPort: service.grpcPort, httpPort: service.httpPort, backend: config.STORAGE_BACKEND },
      'storage listening',
    );
    return {
      banner: `storage service listening: grpc ${config.GRPC_HOST}:${service.grpcPort} http ${service.httpPort}`,
      shutdown: service.shutdown,
    };
  },
});
