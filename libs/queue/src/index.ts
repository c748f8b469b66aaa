/**
 * The BullMQ queues the apps coordinate through: queue names, typed producers of the jobs.v1
 * payloads, retry and backoff defaults, and per-host politeness for the workers.
 */
export {};
