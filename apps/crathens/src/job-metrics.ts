import type { Queue } from 'bullmq';
import { Counter, Gauge, Histogram, type Registry } from '@modproxy/observability';
import { isJobName, type JobWorkerEvents, QueueDepthReader } from '@modproxy/queue';

/** The `name` label of a job whose name is not one of jobs.v1 (an invalid job). */
const UNKNOWN_JOB_NAME = 'unknown';

/** The states whose sizes `/metrics` shows for every queue. */
const DEPTH_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'] as const;

/**
 * Job metrics of every worker in crathens. Labels are the queue, the job name (the message
 * name, `unknown` for any other) and the outcome: a bounded set, never a module path.
 */
export class JobMetrics {
  private readonly attempts: Counter<'queue' | 'name' | 'outcome'>;
  private readonly durations: Histogram<'queue' | 'name' | 'outcome'>;
  private readonly stalled: Counter<'queue'>;
  private readonly queues = new Map<Queue, QueueDepthReader<(typeof DEPTH_STATES)[number]>>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.attempts = new Counter({
      name: 'crathens_job_attempts_total',
      help: 'Job attempts by queue, job name and outcome (completed, retrying, failed, invalid, delayed, handed-back)',
      labelNames: ['queue', 'name', 'outcome'] as const,
      registers,
    });
    this.durations = new Histogram({
      name: 'crathens_job_duration_seconds',
      help: 'How long job attempts ran, by queue, job name and outcome',
      labelNames: ['queue', 'name', 'outcome'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.stalled = new Counter({
      name: 'crathens_jobs_stalled_total',
      help: 'Jobs whose worker stopped renewing their lock (died or hung) and that were put back to run again',
      labelNames: ['queue'] as const,
      registers,
    });
    const queues = this.queues;
    new Gauge({
      name: 'crathens_queue_jobs',
      help: 'Jobs in each queue by state, read from Redis at scrape time',
      labelNames: ['queue', 'state'] as const,
      registers,
      async collect() {
        this.reset();
        // Every queue at once, each under a deadline: a queue Redis that is away must not hold
        // the whole scrape.
        const read = await Promise.all(
          [...queues.values()].map(async (reader) => [reader.name, await reader.read()] as const),
        );
        for (const [name, counts] of read) {
          if (!counts) continue;
          for (const state of DEPTH_STATES) this.set({ queue: name, state }, counts[state]);
        }
      },
    });
  }

  /** Shows this queue's depth by state in `/metrics`. */
  watchQueue(queue: Queue): void {
    if (!this.queues.has(queue)) this.queues.set(queue, new QueueDepthReader(queue, DEPTH_STATES));
  }

  /** Events for a JobWorker of `queue` that record its attempts here. */
  workerEvents(queue: string, also: JobWorkerEvents = {}): JobWorkerEvents {
    return {
      attemptEnded: (jobName, outcome, durationMs, error) => {
        // A job's name is whatever its producer wrote: only the jobs.v1 names become labels.
        const name = isJobName(jobName) ? jobName : UNKNOWN_JOB_NAME;
        this.attempts.inc({ queue, name, outcome });
        this.durations.observe({ queue, name, outcome }, durationMs / 1_000);
        also.attemptEnded?.(jobName, outcome, durationMs, error);
      },
      stalled: (jobId) => {
        this.stalled.inc({ queue });
        also.stalled?.(jobId);
      },
    };
  }
}
