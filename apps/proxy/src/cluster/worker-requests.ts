import type { Worker } from 'node:cluster';
import { propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace as tracing } from '@opentelemetry/api';
import { toModuleError } from '@modproxy/errors';
import type { VersionFetcher } from '@modproxy/module-service';
import type { CallOptions } from '@modproxy/storage';
import type { LatestAnswer, ListAnswer, VersionsProvider } from '@modproxy/versions';
import {
  serializeModuleError,
  type PrimaryMessage,
  type SerializedVersionsAnswer,
  type TraceCarrier,
} from './cluster-messages';

export interface WorkerRequestsOptions {
  /** The primary's list/latest provider: the embedded cache (or lathens, which workers ask themselves). */
  versions: VersionsProvider;
}

/**
 * What the primary does for its workers, so that it happens once per machine:
 * - fetches: every worker's miss comes here over IPC to the one in-process fetcher (one
 *   SingleFlight per version), in the trace of the request that asked;
 * - list/latest: answered from the one embedded cache (one upstream call per module per soft TTL
 *   for the whole machine; workers keep an answer a moment, see WorkerVersions);
 * - stored versions: as the versions provider the fetcher tells, it tells the cache and every
 *   worker (whose copies of that module's answers are dropped).
 */
export class WorkerRequests implements VersionsProvider {
  private readonly workers = new Set<Worker>();
  private readonly versions: VersionsProvider;
  private fetcher: VersionFetcher | undefined;

  constructor(options: WorkerRequestsOptions) {
    this.versions = options.versions;
  }

  /** The fetcher misses go to (built after this, since it reports stored versions here). */
  useFetcher(fetcher: VersionFetcher): void {
    this.fetcher = fetcher;
  }

  /** A worker whose requests are answered and who hears of stored versions from now on. */
  attach(worker: Worker): void {
    this.workers.add(worker);
    worker.once('exit', () => this.workers.delete(worker));
  }

  /** A worker asked for module@version: answered `fetched` once it is stored or failed. */
  fetch(
    worker: Worker,
    id: number,
    module: string,
    version: string,
    trace: TraceCarrier,
    goModSha256?: string,
  ): void {
    const fetcher = this.fetcher;
    if (!fetcher) return;
    const expected = goModSha256 === undefined ? {} : { goModSha256 };
    void inTrace(trace, 'fetch', { module, version }, () => fetcher.fetch(module, version, expected)).then(
      () => send(worker, { type: 'modproxy:fetched', id }),
      (error: unknown) =>
        send(worker, {
          type: 'modproxy:fetched',
          id,
          failure: serializeModuleError(toModuleError(error, 'module.fetch', { module, version })),
        }),
    );
  }

  /** A worker's async download mode: start the fetch; its outcome is reported by the fetcher's events. */
  enqueue(module: string, version: string, trace: TraceCarrier): void {
    const fetcher = this.fetcher;
    if (!fetcher) return;
    void inTrace(trace, 'enqueue fetch', { module, version }, () => fetcher.enqueue(module, version)).catch(
      () => undefined,
    );
  }

  /** A worker's `/@v/list` or `/@latest`, from the primary's cache. */
  answer(worker: Worker, id: number, kind: 'list' | 'latest', module: string, trace: TraceCarrier): void {
    void inTrace(trace, kind, { module }, async (): Promise<SerializedVersionsAnswer> => {
      if (kind === 'list') {
        const { versions, source, stale } = await this.versions.list(module);
        return { versions, source, stale };
      }
      const { info, source, stale } = await this.versions.latest(module);
      return { info: info.toString('utf8'), source, stale };
    }).then(
      (answer) => send(worker, { type: 'modproxy:versions-answer', id, answer }),
      (error: unknown) =>
        send(worker, {
          type: 'modproxy:versions-answer',
          id,
          failure: serializeModuleError(toModuleError(error, `versions.${kind}`, { module })),
        }),
    );
  }

  list(module: string, options?: CallOptions): Promise<ListAnswer> {
    return this.versions.list(module, options);
  }

  latest(module: string, options?: CallOptions): Promise<LatestAnswer> {
    return this.versions.latest(module, options);
  }

  async observe(module: string, version: string, options?: CallOptions): Promise<void> {
    try {
      await this.versions.observe(module, version, options);
    } finally {
      for (const worker of this.workers) send(worker, { type: 'modproxy:observe', module, version });
    }
  }

  async close(): Promise<void> {
    this.workers.clear();
    await this.versions.close();
  }
}

const tracer = tracing.getTracer('@modproxy/proxy-cluster');

function send(worker: Worker, message: PrimaryMessage): void {
  if (worker.isConnected()) worker.send(message);
}

/**
 * Runs a worker's request in the trace of the worker's HTTP request, as a span of the primary's
 * own: the HTTP instrumentation makes no client span under a remote parent (it only passes the
 * context on), so without it the primary's upstream calls would vanish from the trace.
 */
function inTrace<T>(
  trace: TraceCarrier,
  name: string,
  refs: { module: string; version?: string },
  work: () => Promise<T>,
): Promise<T> {
  const attributes = {
    'modproxy.module': refs.module,
    ...(refs.version !== undefined ? { 'modproxy.version': refs.version } : {}),
  };
  return tracer.startActiveSpan(
    `primary ${name}`,
    { kind: SpanKind.INTERNAL, attributes },
    propagation.extract(ROOT_CONTEXT, trace),
    (span) =>
      work().then(
        (value) => {
          span.end();
          return value;
        },
        (error: unknown) => {
          span.setStatus({
            code: SpanStatusCode.ERROR,
            message: error instanceof Error ? error.message : String(error),
          });
          span.end();
          throw error;
        },
      ),
  );
}
