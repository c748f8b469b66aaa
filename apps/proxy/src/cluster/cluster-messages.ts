import { ModuleError, type ErrorKind } from '@modproxy/errors';
import type { Registry } from '@modproxy/observability';
import type { AnswerSource } from '@modproxy/versions';

/**
 * What the proxy's processes say to each other over node:cluster's IPC channel. Every type is
 * prefixed so that prom-client's own cluster messages (and anything else on the channel) are
 * never taken for ours.
 */

/** One process's metrics, as prom-client's `getMetricsAsJSON` gives them (what AggregatorRegistry merges). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** A W3C trace context carrier (`traceparent`, `tracestate`), so a fetch stays in its request's trace. */
export type TraceCarrier = Record<string, string>;

/** A ModuleError as it crosses processes: kind, op, message and the operator-only detail. */
export interface SerializedModuleError {
  kind: ErrorKind;
  op: string;
  message: string;
  module?: string;
  version?: string;
  detail?: string;
  retryAfterSeconds?: number;
}

/** A list or latest answer as it crosses processes (`.info` JSON as text). */
export interface SerializedVersionsAnswer {
  versions?: string[];
  info?: string;
  source: AnswerSource;
  stale: boolean;
}

/** A worker to the primary. */
export type WorkerMessage =
  /** Fetch module@version (once, whoever else asks) and answer `fetched` with the same id. */
  | {
      type: 'modproxy:fetch';
      id: number;
      module: string;
      version: string;
      trace: TraceCarrier;
      /** The go.mod the worker served before the zip was verified: the zip must have it. */
      goModSha256?: string;
    }
  /** Start fetching module@version; nobody waits (the async download modes). */
  | { type: 'modproxy:enqueue'; module: string; version: string; trace: TraceCarrier }
  /** `/@v/list` or `/@latest` from the primary's embedded cache; answered `versions-answer`. */
  | { type: 'modproxy:versions'; id: number; kind: 'list' | 'latest'; module: string; trace: TraceCarrier }
  /** `/metrics` was asked of this worker: the primary answers `scraped` with every process's metrics. */
  | { type: 'modproxy:scrape'; id: number }
  /** This worker's metrics, answering the primary's `collect`. */
  | { type: 'modproxy:metrics'; id: number; metrics: MetricsJson };

/** The primary to a worker. */
export type PrimaryMessage =
  | { type: 'modproxy:fetched'; id: number; failure?: SerializedModuleError }
  | {
      type: 'modproxy:versions-answer';
      id: number;
      answer?: SerializedVersionsAnswer;
      failure?: SerializedModuleError;
    }
  /** A version was stored: every worker's list/latest cache shows it at once. */
  | { type: 'modproxy:observe'; module: string; version: string }
  | { type: 'modproxy:scraped'; id: number; text: string }
  /** Send your metrics (`metrics`, same id). */
  | { type: 'modproxy:collect'; id: number }
  /** Shut down gracefully (readiness off, drain, close) and exit. */
  | { type: 'modproxy:shutdown' };

const WORKER_TYPES = new Set([
  'modproxy:fetch',
  'modproxy:enqueue',
  'modproxy:versions',
  'modproxy:scrape',
  'modproxy:metrics',
]);
const PRIMARY_TYPES = new Set([
  'modproxy:fetched',
  'modproxy:versions-answer',
  'modproxy:observe',
  'modproxy:scraped',
  'modproxy:collect',
  'modproxy:shutdown',
]);

export function isWorkerMessage(message: unknown): message is WorkerMessage {
  return typeOf(message) !== undefined && WORKER_TYPES.has(typeOf(message) ?? '');
}

export function isPrimaryMessage(message: unknown): message is PrimaryMessage {
  return typeOf(message) !== undefined && PRIMARY_TYPES.has(typeOf(message) ?? '');
}

function typeOf(message: unknown): string | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const type = (message as { type?: unknown }).type;
  return typeof type === 'string' ? type : undefined;
}

export function serializeModuleError(error: ModuleError): SerializedModuleError {
  return {
    kind: error.kind,
    op: error.op,
    message: error.message,
    ...(error.module !== undefined ? { module: error.module } : {}),
    ...(error.version !== undefined ? { version: error.version } : {}),
    ...(error.detail !== undefined ? { detail: error.detail } : {}),
    ...(error.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.retryAfterSeconds } : {}),
  };
}

export function deserializeModuleError(failure: SerializedModuleError): ModuleError {
  return new ModuleError(failure.kind, failure.op, failure.message, {
    ...(failure.module !== undefined ? { module: failure.module } : {}),
    ...(failure.version !== undefined ? { version: failure.version } : {}),
    ...(failure.detail !== undefined ? { detail: failure.detail } : {}),
    ...(failure.retryAfterSeconds !== undefined ? { retryAfterSeconds: failure.retryAfterSeconds } : {}),
  });
}
