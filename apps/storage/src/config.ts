import { z } from 'zod';
import {
  booleanFlag,
  durationMs,
  isLoopbackHost,
  loadConfig,
  type LoadConfigOptions,
  logLevel,
  port,
  positiveInt,
} from '@modproxy/config';
import { MAX_ZIP_FILE } from '@modproxy/modzip';
import { mongodbUriProblem } from './mongodb-uri-check';

/** Every variable the storage service reads; README.md documents each one. */
export const storageConfigSchema = z
  .object({
    GRPC_HOST: z.string().min(1).default('127.0.0.1'),
    GRPC_PORT: port(50051),
    /** Plain HTTP for /metrics, /healthz, /readyz; 0 picks a free port. */
    HTTP_PORT: port(9464),
    STORAGE_BACKEND: z
      .enum(['mongo', 'disk', 'memory'], { error: 'must be mongo, disk or memory' })
      .default('disk'),
    STORAGE_DIR: z.string().min(1).default('data/storage'),
    MONGODB_URI: z.string().optional(),
    MONGODB_DATABASE: z.string().min(1).default('modproxy'),
    GRIDFS_BUCKET: z.string().min(1).default('zips'),
    /** Clients must send `authorization: Bearer <token>`; unset: no authentication. */
    STORAGE_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    /** Serve without a token on an address other machines reach (GRPC_HOST not loopback). */
    GRPC_ALLOW_UNAUTHENTICATED: booleanFlag(false),
    /** Largest zip a Save may carry; at most the go command's module zip limit (500 MiB). */
    MAX_ZIP_BYTES: positiveInt(MAX_ZIP_FILE).pipe(
      z
        .number()
        .max(MAX_ZIP_FILE, `must not exceed ${MAX_ZIP_FILE} (500 MiB, the go command's module zip limit)`),
    ),
    TLS_CERT_FILE: z.string().optional(),
    TLS_KEY_FILE: z.string().optional(),
    /** Pause between readiness pings of the database. */
    READINESS_INTERVAL_MS: durationMs(5_000),
    /** Deadline of each readiness ping on its own. */
    READINESS_TIMEOUT_MS: durationMs(5_000),
    /** Consecutive failed pings before the service reports NOT_SERVING (one success turns it back). */
    READINESS_FAILURES: positiveInt(3),
    SHUTDOWN_TIMEOUT_MS: durationMs(10_000),
    LOG_LEVEL: logLevel(),
  })
  .superRefine((config, ctx) => {
    if (config.STORAGE_BACKEND === 'mongo' && !config.MONGODB_URI) {
      ctx.addIssue({
        code: 'custom',
        path: ['MONGODB_URI'],
        message: 'is required when STORAGE_BACKEND=mongo',
      });
    }
    // What the driver would refuse at connect time is refused here, naming the variable.
    const uriProblem = config.MONGODB_URI ? mongodbUriProblem(config.MONGODB_URI) : undefined;
    if (uriProblem) ctx.addIssue({ code: 'custom', path: ['MONGODB_URI'], message: uriProblem });
    if (!config.STORAGE_TOKEN && !config.GRPC_ALLOW_UNAUTHENTICATED && !isLoopbackHost(config.GRPC_HOST)) {
      ctx.addIssue({
        code: 'custom',
        path: ['STORAGE_TOKEN'],
        message: `is required when GRPC_HOST (${config.GRPC_HOST}) is not a loopback address; set GRPC_ALLOW_UNAUTHENTICATED=true to serve without one`,
      });
    }
    if (Boolean(config.TLS_CERT_FILE) !== Boolean(config.TLS_KEY_FILE)) {
      ctx.addIssue({
        code: 'custom',
        path: ['TLS_CERT_FILE'],
        message: 'TLS_CERT_FILE and TLS_KEY_FILE go together',
      });
    }
  });

export type StorageConfig = z.infer<typeof storageConfigSchema>;

export function loadStorageConfig(options?: LoadConfigOptions): StorageConfig {
  return loadConfig(storageConfigSchema, options);
}
