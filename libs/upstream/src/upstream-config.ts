import { z } from 'zod';
import { durationMs, positiveInt } from '@modproxy/config';
import { createUpstreamFromList } from './create-upstream';
import { parseGoproxyList } from './parse-goproxy';
import type { UpstreamChain } from './upstream-chain';

/**
 * The configuration variables of an upstream, the same in every app that fetches: the
 * GOPROXY-style list (validated here, so a bad list stops start-up naming `UPSTREAM`), deadlines,
 * credentials for upstream proxies, and the go command for `direct` with the go variables an
 * operator sets for it (checksum database, private modules, a .netrc).
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
  UPSTREAM_AUTHORIZATION: z.string().optional(),
  GO_BINARY: z.string().min(1).default('go'),
  GO_CONCURRENCY: positiveInt(4),
  GO_WORK_DIR: z.string().optional(),
  NETRC_PATH: z.string().optional(),
  GOSUMDB: z.string().optional(),
  GONOSUMDB: z.string().optional(),
  GOPRIVATE: z.string().optional(),
  GOINSECURE: z.string().optional(),
};

export type UpstreamConfig = z.infer<z.ZodObject<typeof upstreamConfigShape>>;

export interface UpstreamFromConfigOptions {
  /** Deadline of one whole fetch (a go command, a zip download). */
  fetchTimeoutMs: number;
  /** More environment for the go command (tests point git at fixture repositories). */
  goEnv?: Record<string, string>;
}

/** The upstream the configuration describes. */
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
      timeoutMs: options.fetchTimeoutMs,
      ...(config.NETRC_PATH ? { netrcPath: config.NETRC_PATH } : {}),
      ...(config.GO_WORK_DIR ? { workDir: config.GO_WORK_DIR } : {}),
    },
    goproxy: {
      timeoutMs: config.UPSTREAM_TIMEOUT_MS,
      zipTimeoutMs: options.fetchTimeoutMs,
      ...(config.UPSTREAM_AUTHORIZATION ? { headers: { authorization: config.UPSTREAM_AUTHORIZATION } } : {}),
    },
  });
}
