import { availableParallelism } from 'node:os';
import { z } from 'zod';
import {
  booleanFlag,
  delayMs,
  durationMs,
  loadConfig,
  logLevel,
  port,
  type LoadConfigOptions,
} from '@modproxy/config';
import { adminAuthConfigShape, checkAdminAuthConfig } from '@modproxy/http';
import { DOWNLOAD_MODES, redirects, type DownloadMode } from '@modproxy/module-service';
import { checkUpstreamConfig, upstreamConfigShape } from '@modproxy/upstream';
import { readDownloadModeFile, redirectUrlSchema, type DownloadModeFile } from './download-mode-file';
import { workerCount } from './worker-count';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** A size in bytes, 0 included. */
const byteCount = (fallback: number) =>
  z.coerce
    .number({ error: 'must be a number of bytes' })
    .int('must be a whole number of bytes')
    .min(0, 'must be 0 or more')
    .max(Number.MAX_SAFE_INTEGER, 'is too large')
    .default(fallback);

/** Every variable the proxy reads; README.md documents each one. */
export const proxyConfigSchema = z
  .object({
    HOST: z.string().min(1).default('127.0.0.1'),
    PORT: port(3000),
    /** The URL Go clients use, printed at start-up; default http://<HOST>:<PORT>. */
    PUBLIC_URL: z.url({ error: 'must be an absolute http(s) URL' }).optional(),
    STORAGE_TYPE: z
      .enum(['disk', 'memory', 'grpc'], { error: 'must be disk, memory or grpc' })
      .default('disk'),
    STORAGE_DIR: z.string().min(1).default('data/storage'),
    /** host:port of the storage service, for STORAGE_TYPE=grpc. */
    STORAGE_GRPC_URL: z
      .string()
      .regex(/^[^\s/]+:\d+$/, 'must be host:port')
      .optional(),
    STORAGE_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    /** Use TLS to the storage service; with a file, trust that CA (PEM) instead of the system's. */
    STORAGE_TLS: booleanFlag(false),
    STORAGE_TLS_CA_FILE: z.string().optional(),
    /**
     * The content cache (libs/content-cache): a canonical version's .info, .mod and zips up to
     * CACHE_ZIP_MEMORY_MAX_BYTES in memory, at most CACHE_MEMORY_MAX_BYTES (0: no memory tier).
     */
    CACHE_MEMORY_MAX_BYTES: byteCount(32 * MiB),
    CACHE_ZIP_MEMORY_MAX_BYTES: byteCount(64 * KiB).pipe(
      z.number().max(16 * MiB, `must not exceed ${16 * MiB} (16 MiB): such zips belong on disk`),
    ),
    /**
     * Larger zips on local disk under CACHE_DIR, at most CACHE_MAX_BYTES (0: no disk tier), with
     * STORAGE_TYPE=grpc only: the embedded default's disk storage is such a disk already.
     */
    CACHE_DIR: z.string().min(1).default('data/cache'),
    CACHE_MAX_BYTES: byteCount(GiB),
    ...upstreamConfigShape,
    DOWNLOAD_MODE: z
      .enum(DOWNLOAD_MODES as [DownloadMode, ...DownloadMode[]], {
        error: `must be one of ${DOWNLOAD_MODES.join(', ')}`,
      })
      .default('sync'),
    /** Where `redirect` and `async_redirect` send clients on a miss (the request path is appended). */
    DOWNLOAD_REDIRECT_URL: redirectUrlSchema.optional(),
    /**
     * A JSON file of download modes per module pattern (see download-mode-file.ts); replaces
     * DOWNLOAD_MODE and DOWNLOAD_REDIRECT_URL. Read and validated at start-up.
     */
    DOWNLOAD_MODE_FILE: z
      .string()
      .min(1)
      .transform((path, ctx): { path: string; file: DownloadModeFile } => {
        try {
          return { path, file: readDownloadModeFile(path) };
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: (error as Error).message });
          return z.NEVER;
        }
      })
      .optional(),
    /**
     * The queue Redis (BullMQ, `maxmemory-policy noeviction`): with it, misses are fetched by
     * crathens through the fetch queue, once across every replica; without, in this process.
     */
    QUEUE_REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
      .optional(),
    /** BullMQ key prefix; crathens and the warm command must use the same. */
    QUEUE_PREFIX: z
      .string()
      .min(1)
      .regex(/^[^:\s]+$/, 'must not contain ":" or spaces')
      .default('modproxy'),
    FETCH_TIMEOUT_MS: durationMs(300_000),
    /** How long `.info` for a version query (a branch, a commit) is answered from memory; 0: never. */
    QUERY_CACHE_TTL_MS: z.coerce
      .number({ error: 'must be a duration in milliseconds' })
      .int('must be a whole number of milliseconds')
      .min(0, 'must be 0 (no cache) or more')
      .default(10_000),
    /** list/latest when upstream fails: `fallback` serves the last answer, `strict` fails, `offline` never asks upstream. */
    NETWORK_MODE: z
      .enum(['fallback', 'strict', 'offline'], { error: 'must be fallback, strict or offline' })
      .default('fallback'),
    VERSIONS_SOFT_TTL_MS: durationMs(60_000),
    VERSIONS_HARD_TTL_MS: durationMs(600_000),
    VERSIONS_NEGATIVE_TTL_MS: durationMs(60_000),
    VERSIONS_REVALIDATE_WINDOW_MS: durationMs(600_000),
    /** host:port of lathens; unset: the embedded in-process cache with the same policy. */
    LATHENS_GRPC_URL: z
      .string()
      .regex(/^[^\s/]+:\d+$/, 'must be host:port')
      .optional(),
    LATHENS_GRPC_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    /** Use TLS to lathens; with a file, trust that CA (PEM) instead of the system's. */
    LATHENS_TLS: booleanFlag(false),
    LATHENS_TLS_CA_FILE: z.string().min(1).optional(),
    LATHENS_DEADLINE_MS: durationMs(35_000),
    LOG_LEVEL: logLevel(),
    /**
     * Processes serving requests (node:cluster): 1 serves in this process; more fork that many
     * workers behind one port; 0 or `auto`, one per core (os.availableParallelism()). `npm start`
     * uses `auto`; containers keep 1 and scale with replicas.
     */
    WORKERS: workerCount(),
    /**
     * After a stop signal, how long readiness answers 503 while requests are still served, so
     * load balancers stop sending new ones before the listener closes.
     */
    SHUTDOWN_DELAY_MS: delayMs(0),
    SHUTDOWN_TIMEOUT_MS: durationMs(10_000),
    /** The admin port (the status page); unset: none. */
    ADMIN_HOST: z.string().min(1).default('127.0.0.1'),
    // No default: the admin port is off unless a port is given (0 picks a free one).
    ADMIN_PORT: port(0).unwrap().optional(),
    /** Who may see the status page (libs/http AdminAuth): Basic, a bearer token, or nobody. */
    ...adminAuthConfigShape,
  })
  .superRefine((config, ctx) => {
    checkUpstreamConfig(config, ctx);
    checkAdminAuthConfig(config, ctx);
    if (config.VERSIONS_HARD_TTL_MS < config.VERSIONS_SOFT_TTL_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['VERSIONS_HARD_TTL_MS'],
        message: 'must not be shorter than VERSIONS_SOFT_TTL_MS',
      });
    }
    if (redirects(config.DOWNLOAD_MODE) && !config.DOWNLOAD_REDIRECT_URL && !config.DOWNLOAD_MODE_FILE) {
      ctx.addIssue({
        code: 'custom',
        path: ['DOWNLOAD_REDIRECT_URL'],
        message: `is required when DOWNLOAD_MODE=${config.DOWNLOAD_MODE}`,
      });
    }
    if (config.STORAGE_TYPE === 'memory' && config.WORKERS > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['WORKERS'],
        message: 'must be 1 (or auto) with STORAGE_TYPE=memory: workers would not share the memory',
      });
    }
    if (config.STORAGE_TYPE === 'grpc' && !config.STORAGE_GRPC_URL) {
      ctx.addIssue({
        code: 'custom',
        path: ['STORAGE_GRPC_URL'],
        message: 'is required when STORAGE_TYPE=grpc',
      });
    }
  });

export type ProxyConfig = z.infer<typeof proxyConfigSchema>;

export function loadProxyConfig(options?: LoadConfigOptions): ProxyConfig {
  return loadConfig(proxyConfigSchema, options);
}

/**
 * How many processes serve requests: WORKERS, with `auto` (0) one per core, except for memory
 * storage, which no two processes can share.
 */
export function servingProcesses(config: ProxyConfig): number {
  if (config.WORKERS > 0) return config.WORKERS;
  return config.STORAGE_TYPE === 'memory' ? 1 : availableParallelism();
}
