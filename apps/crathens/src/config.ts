import { z } from 'zod';
import {
  booleanFlag,
  durationMs,
  loadConfig,
  logLevel,
  port,
  positiveInt,
  type LoadConfigOptions,
} from '@modproxy/config';
import { adminAuthConfigShape, checkAdminAuthConfig } from '@modproxy/http';
import { upstreamConfigShape } from '@modproxy/upstream';
import { crawlConfigShape } from './crawl/crawl-config';

const redisUrl = z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL');
const hostPort = z.string().regex(/^[^\s/]+:\d+$/, 'must be host:port');

/**
 * Every variable crathens reads; apps/crathens/README.md documents each one. Workers and
 * schedulers that plug in (see extensions.ts) add their variables here too.
 */
export const crathensConfigShape = {
  /** Where the admin HTTP server (/healthz, /readyz, /metrics) listens. */
  ADMIN_HOST: z.string().min(1).default('127.0.0.1'),
  ADMIN_PORT: port(7073),
  /** Who may open the queue dashboard (/admin/queues); /healthz, /readyz and /metrics stay open. */
  ...adminAuthConfigShape,
  /** The BullMQ Redis, shared with every producer; `maxmemory-policy noeviction`. */
  QUEUE_REDIS_URL: redisUrl.default('redis://127.0.0.1:6379'),
  /** BullMQ key prefix; producers (the proxy, the warm command) must use the same. */
  QUEUE_PREFIX: z
    .string()
    .min(1)
    .regex(/^[^:\s]+$/, 'must not contain ":" or spaces')
    .default('modproxy'),
  /** The storage service, where fetched versions are saved. */
  STORAGE_GRPC_URL: hostPort.optional(),
  STORAGE_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  STORAGE_TLS: booleanFlag(false),
  STORAGE_TLS_CA_FILE: z.string().min(1).optional(),
  /** lathens, told of every stored version (Observe); unset: nobody is told. */
  LATHENS_GRPC_URL: hostPort.optional(),
  LATHENS_GRPC_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  LATHENS_TLS: booleanFlag(false),
  LATHENS_TLS_CA_FILE: z.string().min(1).optional(),
  ...upstreamConfigShape,
  /** Per-host politeness, the crawl and its schedulers (crawl/crawl-config.ts). */
  ...crawlConfigShape,
  /** FetchVersion jobs this process runs at once. */
  FETCH_CONCURRENCY: positiveInt(4),
  /** Deadline of one whole fetch (go command or zip download, verification, save). */
  FETCH_TIMEOUT_MS: durationMs(300_000),
  /** A job's lock; a killed worker's job runs again once it has expired. */
  JOB_LOCK_DURATION_MS: durationMs(30_000),
  /** How often expired locks are looked for. */
  JOB_STALLED_INTERVAL_MS: durationMs(30_000),
  /** A job whose worker died more often than this fails instead of running again. */
  JOB_MAX_STALLED_COUNT: positiveInt(2),
  LOG_LEVEL: logLevel(),
  /** How long shutdown lets running jobs finish before handing them back to the queue. */
  SHUTDOWN_TIMEOUT_MS: durationMs(30_000),
};

export const crathensConfigSchema = z.object(crathensConfigShape).superRefine((config, ctx) => {
  checkAdminAuthConfig(config, ctx);
  if (!config.STORAGE_GRPC_URL) {
    ctx.addIssue({
      code: 'custom',
      path: ['STORAGE_GRPC_URL'],
      message: 'is required: crathens saves what it fetches through the storage service',
    });
  }
  if (config.UPSTREAM.trim() === 'off') {
    ctx.addIssue({
      code: 'custom',
      path: ['UPSTREAM'],
      message: 'must not be off: crathens fetches from it',
    });
  }
});

export type CrathensConfig = z.infer<typeof crathensConfigSchema>;

export function loadCrathensConfig(options?: LoadConfigOptions): CrathensConfig {
  return loadConfig(crathensConfigSchema, options);
}
