import type { handleUnaryCall } from '@grpc/grpc-js';
import { lathensV1 } from '@modproxy/contracts';
import { errors } from '@modproxy/errors';
import { checkModulePath, isCanonicalVersion } from '@modproxy/gomod';
import { unaryHandler } from '@modproxy/grpc';
import type { CallOptions } from '@modproxy/storage';
import type { AnswerSource, ListAnswer, VersionsProvider } from '@modproxy/versions';

/** What the service serves: list/latest/observe, invalidate and refresh (e.g. `CachedVersions`). */
export interface VersionService extends VersionsProvider {
  invalidate(module: string): Promise<void>;
  /** Asks upstream for the module's list now (a crawler saw new tags) and returns it. */
  refreshList(module: string, options?: CallOptions): Promise<ListAnswer>;
}

export interface VersionServiceOptions {
  /** Every call must carry `authorization: Bearer <token>`. Default: none required. */
  token?: string;
}

const SOURCE_TO_WIRE: Record<AnswerSource, lathensV1.AnswerSource> = {
  upstream: lathensV1.AnswerSource.ANSWER_SOURCE_UPSTREAM,
  cache: lathensV1.AnswerSource.ANSWER_SOURCE_CACHE,
  storage: lathensV1.AnswerSource.ANSWER_SOURCE_STORAGE,
};

export function sourceToWire(source: AnswerSource): lathensV1.AnswerSource {
  return SOURCE_TO_WIRE[source];
}

export function sourceFromWire(source: lathensV1.AnswerSource): AnswerSource {
  switch (source) {
    case lathensV1.AnswerSource.ANSWER_SOURCE_UPSTREAM:
      return 'upstream';
    case lathensV1.AnswerSource.ANSWER_SOURCE_STORAGE:
      return 'storage';
    default:
      return 'cache';
  }
}

/** Version and Time of a `.info`, for the typed fields of LatestResponse; the bytes go as they are. */
function infoFields(info: Buffer): { version: string; time?: Date } {
  try {
    const value = JSON.parse(info.toString('utf8')) as { Version?: unknown; Time?: unknown };
    const version = typeof value.Version === 'string' ? value.Version : '';
    const time = typeof value.Time === 'string' ? new Date(value.Time) : undefined;
    return time && !Number.isNaN(time.getTime()) ? { version, time } : { version };
  } catch {
    return { version: '' };
  }
}

/** A unary method of the version service (see {@link unaryHandler}); its errors name the module. */
function unary<Req extends { module: string }, Res>(
  method: string,
  token: string | undefined,
  handle: (request: Req, signal: AbortSignal, op: string) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return unaryHandler<Req, Res>(
    `lathens.grpc.${method}`,
    token,
    (request, signal, op) => {
      // The transport checks input itself: module paths become Redis keys and job ids.
      checkModulePath(request.module);
      return handle(request, signal, op);
    },
    (request) => ({ module: request.module }),
  );
}

/** grpc-js handlers of `modproxy.lathens.v1.VersionService` over a VersionService. */
export function createVersionServiceHandlers(
  service: VersionService,
  options: VersionServiceOptions = {},
): lathensV1.VersionServiceServer {
  const { token } = options;
  return {
    list: unary('list', token, async (request: lathensV1.ListRequest, signal) => {
      const answer = await service.list(request.module, { signal });
      return { versions: answer.versions, source: sourceToWire(answer.source), stale: answer.stale };
    }),
    latest: unary('latest', token, async (request: lathensV1.LatestRequest, signal) => {
      const answer = await service.latest(request.module, { signal });
      return {
        ...infoFields(answer.info),
        info: answer.info,
        source: sourceToWire(answer.source),
        stale: answer.stale,
      };
    }),
    // The service lists only what its storage confirms is stored: callers are not trusted to say so.
    observe: unary('observe', token, async (request: lathensV1.ObserveRequest, signal, op) => {
      if (!isCanonicalVersion(request.version)) {
        throw errors.invalidArgument(
          op,
          `invalid version "${request.version}": not a canonical semantic version`,
          {
            module: request.module,
            version: request.version,
          },
        );
      }
      await service.observe(request.module, request.version, { signal });
      return {};
    }),
    invalidate: unary('invalidate', token, async (request: lathensV1.InvalidateRequest) => {
      await service.invalidate(request.module);
      return {};
    }),
    refresh: unary('refresh', token, async (request: lathensV1.RefreshRequest, signal) => {
      const answer = await service.refreshList(request.module, { signal });
      return { versions: answer.versions, source: sourceToWire(answer.source), stale: answer.stale };
    }),
  };
}
