import type { JobMiddleware } from '../job-worker';
import type { HostGate } from './host-gate';

/**
 * The gate as middleware of a JobWorker: every attempt of a job for `module` runs with a slot
 * of `hostOf(module)` (every jobs.v1 message names its module), or is moved back to delayed.
 */
export function hostMiddleware(
  gate: HostGate,
  hostOf: (module: string) => string | undefined,
): JobMiddleware {
  return (_name, message, context, next) =>
    gate.run(context.job, context.token, hostOf(message.module), next);
}
