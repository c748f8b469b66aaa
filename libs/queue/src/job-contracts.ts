import { jobsV1 } from '@modproxy/contracts';
import { errors, toModuleError } from '@modproxy/errors';
import { checkModulePath, checkModuleVersion, isCanonicalVersion } from '@modproxy/gomod';
import { CRAWL_QUEUE, FETCH_QUEUE, type QueueName } from './queue-names';

/** The jobs.v1 messages by the job name they travel under (the message name). */
export interface JobMessages {
  FetchVersion: jobsV1.FetchVersion;
  CrawlModule: jobsV1.CrawlModule;
  RefreshList: jobsV1.RefreshList;
}

export type JobName = keyof JobMessages;

/** W3C trace context (`traceparent`, `tracestate`) a producer passes on to the worker. */
export type TraceContext = Record<string, string>;

/** How one job kind is named, queued, encoded and checked. */
export interface JobContract<N extends JobName> {
  name: N;
  queue: QueueName;
  /** The message as BullMQ job data: ts-proto's canonical JSON form. */
  encode(message: JobMessages[N]): Record<string, unknown>;
  /** Job data back to the message; `invalid-argument` when it is not a valid one. */
  decode(data: unknown): JobMessages[N];
}

const OP = 'queue.decode';
/** A job's trace context is a couple of short headers; anything bigger is not one. */
const MAX_TRACE_CONTEXT_ENTRIES = 8;
const MAX_TRACE_CONTEXT_VALUE = 512;

function asObject(name: JobName, data: unknown): Record<string, unknown> {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw errors.invalidArgument(OP, `${name} job data is not a JSON object`);
  }
  return data as Record<string, unknown>;
}

function checkModule(module: string): void {
  try {
    checkModulePath(module);
  } catch (error) {
    throw toModuleError(error, OP, { module });
  }
}

function checkTraceContext(name: JobName, traceContext: TraceContext): void {
  const entries = Object.entries(traceContext);
  if (
    entries.length > MAX_TRACE_CONTEXT_ENTRIES ||
    entries.some(([key, value]) => key.length > 64 || value.length > MAX_TRACE_CONTEXT_VALUE)
  ) {
    throw errors.invalidArgument(OP, `${name} job has an oversized trace context`);
  }
}

function contract<N extends JobName>(
  name: N,
  queue: QueueName,
  fns: { toJSON(message: JobMessages[N]): unknown; fromJSON(object: unknown): JobMessages[N] },
  check: (message: JobMessages[N]) => void,
): JobContract<N> {
  return {
    name,
    queue,
    encode: (message) => {
      check(message);
      return fns.toJSON(message) as Record<string, unknown>;
    },
    decode: (data) => {
      const message = fns.fromJSON(asObject(name, data));
      check(message);
      return message;
    },
  };
}

/**
 * Every job kind. Producers encode through these and workers decode through them, so a payload
 * that is not a valid message (a malformed module path, a version that is not canonical) is
 * refused on both sides: `invalid-argument`, which a worker turns into an unrecoverable failure.
 */
export const jobContracts: { [N in JobName]: JobContract<N> } = {
  FetchVersion: contract('FetchVersion', FETCH_QUEUE, jobsV1.FetchVersion, (message) => {
    checkModule(message.module);
    if (!isCanonicalVersion(message.version)) {
      throw errors.invalidArgument(
        OP,
        `invalid version ${JSON.stringify(message.version)}: not a canonical semantic version`,
        { module: message.module, version: message.version },
      );
    }
    try {
      checkModuleVersion(message.module, message.version);
    } catch (error) {
      throw toModuleError(error, OP, { module: message.module, version: message.version });
    }
    if (message.requestedAt !== undefined && Number.isNaN(message.requestedAt.getTime())) {
      throw errors.invalidArgument(OP, 'FetchVersion job has an invalid requestedAt');
    }
    if (message.goModSha256 !== '' && !/^[0-9a-f]{64}$/.test(message.goModSha256)) {
      throw errors.invalidArgument(
        OP,
        'FetchVersion job has a goModSha256 that is not 64 lower-case hex digits',
        {
          module: message.module,
          version: message.version,
        },
      );
    }
    checkTraceContext('FetchVersion', message.traceContext);
  }),
  CrawlModule: contract('CrawlModule', CRAWL_QUEUE, jobsV1.CrawlModule, (message) => {
    checkModule(message.module);
    if (
      message.reason === jobsV1.CrawlReason.UNRECOGNIZED ||
      message.reason === jobsV1.CrawlReason.CRAWL_REASON_UNSPECIFIED
    ) {
      throw errors.invalidArgument(OP, 'CrawlModule job has no known reason', { module: message.module });
    }
    checkTraceContext('CrawlModule', message.traceContext);
  }),
  RefreshList: contract('RefreshList', CRAWL_QUEUE, jobsV1.RefreshList, (message) => {
    checkModule(message.module);
    checkTraceContext('RefreshList', message.traceContext);
  }),
};

export function isJobName(name: string): name is JobName {
  return Object.hasOwn(jobContracts, name);
}
