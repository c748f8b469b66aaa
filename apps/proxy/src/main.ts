import { runService } from '@modproxy/runtime';
import { formatGoproxyList, parseGoproxyList } from '@modproxy/upstream';
import { loadProxyConfig } from './config';
import { startProxy } from './server';

runService({
  name: 'proxy',
  loadConfig: loadProxyConfig,
  start: async (config, logger) => {
    const proxy = await startProxy(config, logger);
    logger.info(
      {
        url: proxy.url,
        storage: config.STORAGE_TYPE,
        upstream: formatGoproxyList(parseGoproxyList(config.UPSTREAM)),
        mode: config.DOWNLOAD_MODE_FILE
          ? `per pattern (${config.DOWNLOAD_MODE_FILE.path})`
          : config.DOWNLOAD_MODE,
        fetches: config.QUEUE_REDIS_URL ? 'fetch queue (crathens)' : 'in process',
      },
      'proxy listening',
    );
    return {
      banner: `\nGo module proxy ready. Use it with:\n\n  export GOPROXY=${proxy.url}\n`,
      shutdown: proxy.shutdown,
    };
  },
});
