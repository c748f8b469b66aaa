import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { GrpcStorage } from '@modproxy/storage-grpc';
import { createTempDir, removeDir, startAppProcess, type AppProcess } from '@modproxy/testing';
import { startStorageProcess } from './storage-process';

export interface QueuedShapeOptions {
  mongoUri: string;
  /** One Redis for lathens' cache and the queue (a test; production splits them). */
  redisUrl: string;
  /** What crathens and lathens fetch from (a GOPROXY list), e.g. a fixture GOPROXY. */
  upstream: string;
  /** Proxy replicas started at once. @default 3 */
  replicas?: number;
  /** More environment of every process (the go command's fixture settings, say). */
  env?: Record<string, string>;
  /** More environment of crathens only. */
  crathensEnv?: Record<string, string>;
  /** More environment of every replica. */
  proxyEnv?: Record<string, string>;
  /** @default 'warn' */
  logLevel?: string;
  /** The repository, whose dist/apps holds the built apps. Default: found from this file. */
  root?: string;
}

export interface QueuedShape {
  /** Base URLs of the replicas, to put in GOPROXY. */
  proxies: string[];
  /** Every process, for their output. */
  processes: AppProcess[];
  /** The storage service, for looking at what is stored. */
  inspector: GrpcStorage;
  /** The queue's key prefix (crathens', the replicas', the warm command's). */
  prefix: string;
  /** Starts one more replica with more environment (another download mode); stopped by `stop`. */
  startProxy(env?: Record<string, string>): Promise<string>;
  /** What every process printed, for an assertion's message. */
  logs(): string;
  stop(): Promise<void>;
}

/**
 * The production shape with the fetch queue, as processes: the storage service on MongoDB's
 * wire protocol, lathens on Redis, crathens' fetch workers on the queue Redis, and proxy
 * replicas that hand every miss to the queue (QUEUE_REDIS_URL) and keep nothing themselves.
 */
export async function startQueuedShape(options: QueuedShapeOptions): Promise<QueuedShape> {
  const root = options.root ?? join(__dirname, '..', '..', '..');
  const main = (app: string) => join(root, 'dist', 'apps', app, 'main.js');
  const token = randomBytes(24).toString('hex');
  const prefix = `q${randomBytes(4).toString('hex')}`;
  const sandbox = await createTempDir('queued-shape-');
  await mkdir(join(sandbox, 'tmp'));
  const base = {
    PATH: process.env['PATH'] ?? '',
    HOME: sandbox,
    LOG_LEVEL: options.logLevel ?? 'warn',
    TMPDIR: join(sandbox, 'tmp'),
    ...options.env,
  };
  const started: AppProcess[] = [];
  const stopAll = async () => {
    const exits: Array<number | null> = [];
    for (const child of [...started].reverse()) exits.push(await child.stop());
    return exits;
  };
  try {
    const storage = await startStorageProcess({
      env: { ...base },
      token,
      backend: { mongoUri: options.mongoUri, databasePrefix: 'queued' },
      cwd: sandbox,
    });
    started.push(storage);
    const grpcUrl = `127.0.0.1:${storage.match[1] ?? ''}`;
    const storageEnv = { STORAGE_GRPC_URL: grpcUrl, STORAGE_TOKEN: token };
    const lathens = await startAppProcess(main('lathens'), {
      env: {
        ...base,
        ...storageEnv,
        STORAGE_TYPE: 'grpc',
        REDIS_URL: options.redisUrl,
        KEY_PREFIX: `${prefix}-lathens:`,
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        GRPC_TOKEN: token,
        UPSTREAM: options.upstream,
      },
      cwd: sandbox,
      ready: /lathens listening: grpc (\S+) http (\S+)/,
    });
    started.push(lathens);
    const lathensEnv = { LATHENS_GRPC_URL: lathens.match[1] ?? '', LATHENS_GRPC_TOKEN: token };
    const queueEnv = { QUEUE_REDIS_URL: options.redisUrl, QUEUE_PREFIX: prefix };
    const crathens = await startAppProcess(main('crathens'), {
      env: {
        ...base,
        ...storageEnv,
        ...lathensEnv,
        ...queueEnv,
        ADMIN_PORT: '0',
        UPSTREAM: options.upstream,
        ...options.crathensEnv,
      },
      cwd: sandbox,
      ready: /crathens running: admin (\S+)/,
    });
    started.push(crathens);

    let replicaCount = 0;
    const startProxy = async (env: Record<string, string> = {}): Promise<string> => {
      const proxy = await startAppProcess(main('proxy'), {
        env: {
          ...base,
          ...storageEnv,
          ...lathensEnv,
          ...queueEnv,
          STORAGE_TYPE: 'grpc',
          // Each replica's content cache has a disk tier of its own, as on its own machine.
          CACHE_DIR: join(sandbox, `cache-${replicaCount++}`),
          PORT: '0',
          UPSTREAM: options.upstream,
          ...options.proxyEnv,
          ...env,
        },
        cwd: sandbox,
        ready: /export GOPROXY=(\S+)/,
      });
      started.push(proxy);
      return proxy.match[1] ?? '';
    };
    const proxies: string[] = [];
    for (let i = 0; i < (options.replicas ?? 3); i++) proxies.push(await startProxy());

    const inspector = new GrpcStorage({ url: grpcUrl, token });
    return {
      proxies,
      processes: started,
      inspector,
      prefix,
      startProxy,
      logs: () => started.map((child) => `${child.stdout()}\n${child.stderr()}`).join('\n'),
      stop: async () => {
        await inspector.close();
        const exits = await stopAll();
        const logs = started.map((child) => child.stderr()).join('\n');
        await removeDir(sandbox);
        if (exits.some((code) => code !== 0 && code !== null)) {
          throw new Error(`unclean exit (${exits.join(', ')}):\n${logs.slice(-10_000)}`);
        }
      },
    };
  } catch (error) {
    await stopAll();
    await removeDir(sandbox);
    throw error;
  }
}
