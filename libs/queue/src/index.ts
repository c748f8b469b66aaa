/**
 * The BullMQ queues the apps coordinate through: queue names, typed producers and consumers of
 * the jobs.v1 payloads, job ids, retry and backoff defaults, waiting for a job, and the Redis
 * connection they run on.
 */
export * from './queue-names';
export * from './redis-connection';
export * from './close-queue-connection';
export * from './queue-depth-reader';
export * from './job-contracts';
export * from './job-ids';
export * from './job-options';
export * from './job-failure';
export * from './job-events';
export * from './fetch-queue';
export * from './crawl-queue';
export * from './job-worker';
export * from './host';
export * from './recent-modules';
export * from './unconfirmed-versions';
export * from './crawl-schedulers';
