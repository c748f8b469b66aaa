import { z } from 'zod';
import {
  booleanFlag,
  delayMs,
  durationMs,
  isLoopbackHost,
  loadConfig,
  logLevel,
  port,
  positiveInt,
  type LoadConfigOptions,
} from '@modproxy/config';
import { checkUpstreamConfig, upstreamConfigShape } from '@modproxy/upstream';

const redisUrl = z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL');

/** Every variable lathens reads; README.md documents each one. */
export const lathensConfigSchema = z
  .object({
    HOST: z.string().min(1).default('127.0.0.1'),
    GRPC_PORT: port(7071),
    HTTP_PORT: port(7072),
    /** Shared token gRPC callers must send as `authorization: Bearer <token>`; none by default. */
    GRPC_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    /** Serve gRPC without a token on an address other machines reach (HOST not loopback). */
    GRPC_ALLOW_UNAUTHENTICATED: booleanFlag(false),
    /** Serve gRPC over TLS (PEM files); both or neither. */
    TLS_CERT_FILE: z.string().min(1).optional(),
    TLS_KEY_FILE: z.string().min(1).optional(),
    REDIS_URL: redisUrl.default('redis://127.0.0.1:6379'),
    /** The BullMQ Redis; default REDIS_URL. In production a separate server with `maxmemory-policy noeviction`. */
    QUEUE_REDIS_URL: redisUrl.optional(),
    KEY_PREFIX: z.string().min(1).default('lathens:'),
    SOFT_TTL_MS: durationMs(60_000),
    HARD_TTL_MS: durationMs(600_000),
    NEGATIVE_TTL_MS: durationMs(60_000),
    FAILURE_TTL_MS: durationMs(10_000),
    REVALIDATE_WINDOW_MS: durationMs(600_000),
    WAIT_TIMEOUT_MS: durationMs(30_000),
    RETAIN_MS: durationMs(7 * 24 * 3_600_000),
    ...upstreamConfigShape,
    NETWORK_MODE: z
      .enum(['strict', 'fallback', 'offline'], { error: 'must be strict, fallback or offline' })
      .default('fallback'),
    /** Where stored versions are read from: a disk storage directory, the storage gRPC service, or nothing. */
    STORAGE_TYPE: z.enum(['disk', 'grpc', 'none'], { error: 'must be disk, grpc or none' }).default('disk'),
    STORAGE_DIR: z.string().min(1).default('data/storage'),
    STORAGE_GRPC_URL: z.string().min(1).optional(),
    STORAGE_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    /** Use TLS to the storage service; with a file, trust that CA (PEM) instead of the system's. */
    STORAGE_TLS: booleanFlag(false),
    STORAGE_TLS_CA_FILE: z.string().min(1).optional(),
    /** Whether this replica also runs revalidation jobs (every replica may). */
    RUN_WORKER: booleanFlag(true),
    REVALIDATION_CONCURRENCY: positiveInt(8),
    LOG_LEVEL: logLevel(),
    /**
     * After a stop signal, how long readiness answers 503 while requests are still served, so
     * load balancers stop sending new ones before the listener closes.
     */
    SHUTDOWN_DELAY_MS: delayMs(0),
    SHUTDOWN_TIMEOUT_MS: durationMs(10_000),
  })
  .superRefine((config, ctx) => {
    checkUpstreamConfig(config, ctx);
    if (config.HARD_TTL_MS < config.SOFT_TTL_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['HARD_TTL_MS'],
        message: 'must not be shorter than SOFT_TTL_MS',
      });
    }
    if (config.STORAGE_TYPE === 'grpc' && !config.STORAGE_GRPC_URL) {
      ctx.addIssue({
        code: 'custom',
        path: ['STORAGE_GRPC_URL'],
        message: 'is required when STORAGE_TYPE=grpc',
      });
    }
    if (!config.GRPC_TOKEN && !config.GRPC_ALLOW_UNAUTHENTICATED && !isLoopbackHost(config.HOST)) {
      ctx.addIssue({
        code: 'custom',
        path: ['GRPC_TOKEN'],
        message: `is required when HOST (${config.HOST}) is not a loopback address; set GRPC_ALLOW_UNAUTHENTICATED=true to serve gRPC without one`,
      });
    }
    if (Boolean(config.TLS_CERT_FILE) !== Boolean(config.TLS_KEY_FILE)) {
      ctx.addIssue({
        code: 'custom',
        path: [config.TLS_CERT_FILE ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE'],
        message: 'TLS_CERT_FILE and TLS_KEY_FILE go together',
      });
    }
  });

export type LathensConfig = z.infer<typeof lathensConfigSchema>;

export function loadLathensConfig(options?: LoadConfigOptions): LathensConfig {
  return loadConfig(lathensConfigSchema, options);
}
