import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startAppProcess, type AppProcess } from '@modproxy/testing';

const root = join(__dirname, '..', '..', '..');

/** The built bundle of an app (the e2e global setup builds them). */
export const appMain = (app: string): string => join(root, 'dist', 'apps', app, 'main.js');

export interface StorageProcessOptions {
  /** The rest of its environment (PATH, HOME, LOG_LEVEL, TLS files, …). */
  env: Record<string, string>;
  token: string;
  /** MongoDB-wire storage in a database of its own, named from `databasePrefix`; or a disk. */
  backend: { mongoUri: string; databasePrefix: string } | { dir: string };
  cwd?: string;
}

/**
 * The storage service as a process on free loopback ports, ready once it printed its banner:
 * `match[1]` is its gRPC port, `match[2]` its HTTP port.
 */
export function startStorageProcess(options: StorageProcessOptions): Promise<AppProcess> {
  const backend: Record<string, string> =
    'dir' in options.backend
      ? { STORAGE_BACKEND: 'disk', STORAGE_DIR: options.backend.dir }
      : {
          STORAGE_BACKEND: 'mongo',
          MONGODB_URI: options.backend.mongoUri,
          MONGODB_DATABASE: `${options.backend.databasePrefix}_${randomBytes(4).toString('hex')}`,
        };
  return startAppProcess(appMain('storage'), {
    env: { ...options.env, ...backend, GRPC_PORT: '0', HTTP_PORT: '0', STORAGE_TOKEN: options.token },
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ready: /grpc 127\.0\.0\.1:(\d+) http (\d+)/,
  });
}
