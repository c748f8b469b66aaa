import { z } from 'zod';
import { durationMs, positiveInt } from '@modproxy/config';
import { checkPrefixPatterns, ModuleFilter } from '@modproxy/gomod';
import { createUpstreamFromList } from './create-upstream';
import type { UpstreamCallListener } from './observed-upstream';
import { parseGoproxyList } from './parse-goproxy';
import type { UpstreamChain } from './upstream-chain';

/**
 * What node:http sends in a header value (tab, visible ASCII, space, obs-text; RFC 9110
 * field-value), without the leading or trailing whitespace a header value never has.
 */
function isHeaderValue(value: string): boolean {
  return /^[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?$/.test(value);
}

/** GOPRIVATE-style module patterns: comma-separated globs matched against leading path elements. */
const modulePatterns = () =>
  z
    .string()
    .optional()
    .superRefine((value, ctx) => {
      const problem = value === undefined ? undefined : checkPrefixPatterns(value);
      if (problem)
        ctx.addIssue({ code: 'custom', message: `${problem} (comma-separated globs, as in GOPRIVATE)` });
    });

/**
 * The configuration variables of an upstream, the same in every app that fetches: the
 * GOPROXY-style list (validated here, so a bad list stops start-up naming `UPSTREAM`), deadlines,
 * credentials for upstream proxies, the go command for `direct` with the go variables an
 * operator sets for it (checksum database, private modules, a .netrc) and its limits, and the
 * module filter (which modules are served at all). Apps add {@link checkUpstreamConfig} to
 * their schema's refinements.
 */
export const upstreamConfigShape = {
  UPSTREAM: z
    .string()
    .default('direct')
    .superRefine((value, ctx) => {
      try {
        parseGoproxyList(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    }),
  UPSTREAM_TIMEOUT_MS: durationMs(30_000),
  /** Sent as is in a header: a character a header cannot carry (CR, LF: a second header) is refused. */
  UPSTREAM_AUTHORIZATION: z
    .string()
    .optional()
    .superRefine((value, ctx) => {
      if (value !== undefined && !isHeaderValue(value))
        ctx.addIssue({
          code: 'custom',
          // Never the value (a secret), nor where the character sits in it.
          message:
            'must be a valid HTTP header value: no control characters (CR, LF, NUL, …) other than tab, no characters beyond Latin-1, no leading or trailing space',
        });
    }),
  GO_BINARY: z.string().min(1).default('go'),
  GO_CONCURRENCY: positiveInt(4),
  /** Go commands at once for one VCS host (a module path's first element); default GO_CONCURRENCY - 1, at least 1. */
  GO_HOST_CONCURRENCY: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .positive('must be greater than 0')
    .optional(),
  /** Go commands waiting for a slot; past it, 503 with Retry-After at once. 0: never wait. */
  GO_QUEUE_LIMIT: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(0, 'must be 0 or more')
    .default(128),
  /**
   * Where fetches keep their temp files (the go command's GOPATHs, upstream proxies' zips) and
   * the storage client spools zips shared by concurrent readers. Default: the OS temp dir.
   */
  GO_WORK_DIR: z.string().optional(),
  NETRC_PATH: z.string().optional(),
  GOSUMDB: z.string().optional(),
  GONOSUMDB: z.string().optional(),
  GOPRIVATE: z.string().optional(),
  GOINSECURE: z.string().optional(),
  /** When set, only modules matching one of these patterns are served (403 for the others). */
  ALLOWED_MODULES: modulePatterns(),
  /** Modules never served nor fetched (403); wins over ALLOWED_MODULES. */
  DENIED_MODULES: modulePatterns(),
};

export type UpstreamConfig = z.infer<z.ZodObject<typeof upstreamConfigShape>>;

/** The checks across upstream variables, for an app schema's `superRefine`. */
export function checkUpstreamConfig(config: UpstreamConfig, ctx: z.RefinementCtx): void {
  if (config.GO_HOST_CONCURRENCY !== undefined && config.GO_HOST_CONCURRENCY > config.GO_CONCURRENCY) {
    ctx.addIssue({
      code: 'custom',
      path: ['GO_HOST_CONCURRENCY'],
      message: `must not exceed GO_CONCURRENCY (${config.GO_CONCURRENCY})`,
    });
  }
}

/** The module filter the configuration describes, the same for every app (proxy, lathens, …). */
export function moduleFilterFromConfig(config: UpstreamConfig): ModuleFilter {
  return new ModuleFilter({
    ...(config.ALLOWED_MODULES ? { allow: config.ALLOWED_MODULES } : {}),
    ...(config.DENIED_MODULES ? { deny: config.DENIED_MODULES } : {}),
  });
}

export interface UpstreamFromConfigOptions {
  /** Deadline of one whole fetch (a go command, a zip download). */
  fetchTimeoutMs: number;
  /** More environment for the go command (tests point git at fixture repositories). */
  goEnv?: Record<string, string>;
  /** Told of every upstream call (for metrics). @default none */
  onCall?: UpstreamCallListener;
}

/** The upstream the configuration describes; it never asks about a module the filter refuses. */
export function createUpstreamFromConfig(
  config: UpstreamConfig,
  options: UpstreamFromConfigOptions,
): UpstreamChain {
  const env: Record<string, string> = { ...options.goEnv };
  for (const key of ['GOSUMDB', 'GONOSUMDB', 'GOPRIVATE', 'GOINSECURE'] as const) {
    const value = config[key];
    if (value !== undefined) env[key] = value;
  }
  return createUpstreamFromList(config.UPSTREAM, {
    direct: {
      goBinary: config.GO_BINARY,
      env,
      concurrency: config.GO_CONCURRENCY,
      ...(config.GO_HOST_CONCURRENCY ? { hostConcurrency: config.GO_HOST_CONCURRENCY } : {}),
      queueLimit: config.GO_QUEUE_LIMIT,
      timeoutMs: options.fetchTimeoutMs,
      ...(config.NETRC_PATH ? { netrcPath: config.NETRC_PATH } : {}),
      ...(config.GO_WORK_DIR ? { workDir: config.GO_WORK_DIR } : {}),
    },
    goproxy: {
      timeoutMs: config.UPSTREAM_TIMEOUT_MS,
      zipTimeoutMs: options.fetchTimeoutMs,
      // One work directory for every fetch's temp files (the start-up sweep looks there).
      ...(config.GO_WORK_DIR ? { tempDir: config.GO_WORK_DIR } : {}),
      ...(config.UPSTREAM_AUTHORIZATION ? { headers: { authorization: config.UPSTREAM_AUTHORIZATION } } : {}),
    },
    moduleFilter: moduleFilterFromConfig(config),
    ...(options.onCall ? { onCall: options.onCall } : {}),
  });
}
