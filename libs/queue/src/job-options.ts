import type { JobsOptions } from 'bullmq';

/**
 * Retries of a FetchVersion job: 5 attempts, waits of 2, 4, 8 and 16 s between them. Failures
 * that cannot get better (not-found, gone, invalid-argument, forbidden) are not retried.
 */
export const FETCH_ATTEMPTS = 5;
export const FETCH_BACKOFF_MS = 2_000;

/**
 * A completed fetch keeps its id this long (seconds), so a burst of adds for the version is one
 * job, and then frees it. Completion is not the source of truth (storage is): an add after it is
 * gone makes a job that finds the version stored and ends at once.
 */
export const COMPLETED_RETENTION_SECONDS = 300;

/**
 * Failed jobs are kept for dashboards and the status page; an add of a failed id retries it
 * (see `FetchQueue.add`), so a kept failure never answers a later request.
 */
export const FAILED_RETENTION_SECONDS = 3_600;
export const FAILED_RETENTION_COUNT = 1_000;

/** The job options every FetchVersion producer uses. */
export const FETCH_JOB_OPTIONS: JobsOptions = {
  attempts: FETCH_ATTEMPTS,
  backoff: { type: 'exponential', delay: FETCH_BACKOFF_MS },
  removeOnComplete: { age: COMPLETED_RETENTION_SECONDS },
  removeOnFail: { age: FAILED_RETENTION_SECONDS, count: FAILED_RETENTION_COUNT },
};

/**
 * Crawl jobs: a failed crawl is retried a few times, then left to the next scheduled pass;
 * finished jobs go at once so the module's dedup id is free for the next pass.
 */
export const CRAWL_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 5_000 },
  removeOnComplete: true,
  removeOnFail: { age: FAILED_RETENTION_SECONDS, count: FAILED_RETENTION_COUNT },
};
