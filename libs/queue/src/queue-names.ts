/**
 * The BullMQ queues modproxy's apps share. Producers and workers must agree on these names and
 * on the key prefix (`QUEUE_PREFIX`), or their jobs never meet.
 */

/** FetchVersion jobs: one module version fetched from upstream and stored. */
export const FETCH_QUEUE = 'fetch';

/** CrawlModule and RefreshList jobs: what upstream knows of a module, compared with what we hold. */
export const CRAWL_QUEUE = 'crawl';

/** The BullMQ key prefix when configuration names none. */
export const DEFAULT_QUEUE_PREFIX = 'modproxy';

export type QueueName = typeof FETCH_QUEUE | typeof CRAWL_QUEUE;
