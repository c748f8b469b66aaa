import cluster from 'node:cluster';
import { runService } from '@modproxy/runtime';
import { formatGoproxyList, parseGoproxyList } from '@modproxy/upstream';
import { ProxyPrimary } from './cluster/proxy-primary';
import { startProxyWorker } from './cluster/proxy-worker';
import { loadProxyConfig, servingProcesses } from './config';
import { startProxy } from './server';

runService({
  name: 'proxy',
  loadConfig: loadProxyConfig,
  start: async (config, logger) => {
    if (cluster.isWorker) return startProxyWorker(config, logger);
    const workers = servingProcesses(config);
    const proxy =
      workers > 1 ? await ProxyPrimary.start(config, logger, workers) : await startProxy(config, logger);
    const url = 'primary' in proxy ? proxy.url : proxy.url;
    const shutdown = 'primary' in proxy ? () => proxy.primary.shutdown() : proxy.shutdown;
    logger.info(
      {
        url,
        workers,
        storage: config.STORAGE_TYPE,
        upstream: formatGoproxyList(parseGoproxyList(config.UPSTREAM)),
        mode: config.DOWNLOAD_MODE_FILE
          ? `per pattern (${config.DOWNLOAD_MODE_FILE.path})`
          : config.DOWNLOAD_MODE,
        fetches: config.QUEUE_REDIS_URL
          ? 'fetch queue (crathens)'
          : workers > 1
            ? 'in the primary process, for every worker'
            : 'in process',
      },
      'proxy listening',
    );
    return {
      banner: `\nGo module proxy ready. Use it with:\n\n  export GOPROXY=${url}\n`,
      shutdown,
    };
  },
});
