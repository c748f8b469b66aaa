import { toModuleError } from '@modproxy/errors';
import { ModuleService } from '@modproxy/module-service';
import { Counter } from '@modproxy/observability';
import { FETCH_QUEUE, JobWorker, type FetchResult } from '@modproxy/queue';
import type { CrathensComponent, CrathensContext } from './compose';

/**
 * The fetch worker: a FetchVersion job runs exactly the proxy's miss path (ModuleService:
 * fetch from upstream, verify, save through the storage service, tell lathens), so a version
 * crathens stores is byte for byte what the proxy would have stored. A version already stored
 * is a no-op but for telling lathens again (a previous attempt may have died between the save
 * and the observe). not-found, gone, invalid-argument and forbidden fail the job at once; other
 * failures are retried with backoff.
 */
export function createFetchWorker(context: CrathensContext): CrathensComponent {
  const { config, logger, storage, upstream, versions } = context;
  // Set by the service's events during one job; a job id is active in one worker at a time.
  const fetchedNow = new Set<string>();
  const goModMismatches = new Counter({
    name: 'crathens_go_mod_mismatches_total',
    help: 'Fetches refused because the zip has another go.mod than the one a proxy served before the zip was verified',
    registers: [context.metrics.registry],
  });
  goModMismatches.inc(0);
  const service = new ModuleService({
    storage,
    upstream,
    versions,
    downloadMode: 'sync',
    fetchTimeoutMs: config.FETCH_TIMEOUT_MS,
    events: {
      fetched: (module, version, durationMs) => {
        fetchedNow.add(`${module}@${version}`);
        logger.info({ module, version, durationMs }, 'fetched and stored');
      },
      fetchFailed: (module, version, error) => {
        logger.warn(
          { module, version, kind: error.kind, op: error.op, detail: error.detail, err: error.message },
          'fetch failed',
        );
      },
      goModMismatch: (module, version) => {
        goModMismatches.inc();
        logger.warn(
          { module, version },
          'go.mod mismatch: the zip has another go.mod than the one a proxy served before it; nothing was stored',
        );
      },
      observeFailed: (module, version, error) => {
        logger.warn(
          { module, version, kind: error.kind, err: error.message },
          'stored, but lathens could not be told; its next refresh lists it',
        );
      },
    },
  });

  const worker = new JobWorker({
    ...context.workerDefaults,
    queueName: FETCH_QUEUE,
    concurrency: config.FETCH_CONCURRENCY,
    middleware: context.fetchMiddleware,
    events: context.jobMetrics.workerEvents(FETCH_QUEUE, {
      stalled: (jobId) => logger.warn({ jobId }, 'a fetch job lost its worker; it runs again'),
    }),
    handlers: {
      FetchVersion: async ({ module, version, goModSha256 }, { signal }): Promise<FetchResult> => {
        const key = `${module}@${version}`;
        fetchedNow.delete(key);
        // A proxy that served the go.mod before the zip says which: a zip with another is refused.
        await service.ensureStored(module, version, { signal, ...(goModSha256 ? { goModSha256 } : {}) });
        if (fetchedNow.delete(key)) return { result: 'fetched' };
        // Stored before this attempt: lathens may not have heard of it. A failure here costs a
        // list that misses the version until lathens' next refresh, not a failed job.
        await versions.observe(module, version).catch((error: unknown) => {
          const failure = toModuleError(error, 'crathens.observe', { module, version });
          logger.warn(
            { module, version, kind: failure.kind, err: failure.message },
            'lathens could not be told',
          );
        });
        return { result: 'already-stored' };
      },
    },
  });

  return {
    name: 'fetch-worker',
    start: () => worker.start(),
    close: async (graceMs) => {
      const { handedBack } = await worker.close(graceMs);
      if (handedBack > 0)
        logger.warn({ handedBack, graceMs }, 'fetch jobs still running at shutdown were handed back');
    },
  };
}
