/** The proxy's status page: recently fetched versions, crawl state per host, recent failures. */
export * from './bounded-ring';
export * from './status-snapshot';
export * from './fetch-queue-history';
export * from './proxy-status';
export * from './status-page-html';
export * from './status-app';
