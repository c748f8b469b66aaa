import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { GrpcStorage } from '@modproxy/storage-grpc';
import {
  type AppProcess,
  createTempDir,
  type FixtureModules,
  type ProxyDeployment,
  removeDir,
  startAppProcess,
} from '@modproxy/testing';
import { startStorageProcess } from './storage-process';

const root = join(__dirname, '..', '..', '..');
const main = (app: string) => join(root, 'dist', 'apps', app, 'main.js');

export interface ProductionShapeOptions {
  mongoUri: string;
  /** With lathens in front of list/latest (needs `redisUrl`); without, the proxy's embedded cache. */
  redisUrl?: string;
}

export interface ProductionShape extends ProxyDeployment {
  storage: AppProcess;
  proxy: AppProcess;
  lathens?: AppProcess;
}

/**
 * The production shape as processes: the storage service over gRPC (shared token) on MongoDB's
 * wire protocol, optionally lathens on Redis, and the proxy that keeps nothing itself. Every
 * process fetches `direct` from the fixture git repositories.
 */
export async function startProductionShape(
  fixtures: FixtureModules,
  options: ProductionShapeOptions,
): Promise<ProductionShape> {
  const token = randomBytes(24).toString('hex');
  // Every process works and keeps its temp files in one sandbox, so a test can check all of it.
  const sandbox = await createTempDir('e2e-sandbox-');
  await mkdir(join(sandbox, 'tmp'));
  const base = {
    PATH: process.env['PATH'] ?? '',
    HOME: fixtures.env['HOME'] ?? '',
    LOG_LEVEL: 'warn',
    TMPDIR: join(sandbox, 'tmp'),
  };
  const started: AppProcess[] = [];
  try {
    const storage = await startStorageProcess({
      env: { ...base },
      token,
      backend: { mongoUri: options.mongoUri, databasePrefix: 'e2e' },
      cwd: sandbox,
    });
    started.push(storage);
    const grpcUrl = `127.0.0.1:${storage.match[1] ?? ''}`;
    const storageEnv = { STORAGE_TYPE: 'grpc', STORAGE_GRPC_URL: grpcUrl, STORAGE_TOKEN: token };

    let lathens: AppProcess | undefined;
    if (options.redisUrl) {
      lathens = await startAppProcess(main('lathens'), {
        env: {
          ...base,
          ...fixtures.directEnv,
          ...storageEnv,
          REDIS_URL: options.redisUrl,
          KEY_PREFIX: `e2e-${randomBytes(4).toString('hex')}:`,
          GRPC_PORT: '0',
          HTTP_PORT: '0',
          GRPC_TOKEN: token,
          UPSTREAM: 'direct',
        },
        cwd: sandbox,
        ready: /lathens listening: grpc (\S+) http (\S+)/,
      });
      started.push(lathens);
    }
    const proxy = await startAppProcess(main('proxy'), {
      env: {
        ...base,
        ...fixtures.directEnv,
        ...storageEnv,
        PORT: '0',
        UPSTREAM: 'direct',
        ...(lathens ? { LATHENS_GRPC_URL: lathens.match[1] ?? '', LATHENS_GRPC_TOKEN: token } : {}),
      },
      cwd: sandbox,
      ready: /export GOPROXY=(\S+)/,
    });
    started.push(proxy);

    const inspector = new GrpcStorage({ url: grpcUrl, token });
    return {
      url: proxy.match[1] ?? '',
      storage,
      proxy,
      ...(lathens ? { lathens } : {}),
      snapshot: async () => {
        const entries: string[] = [];
        let pageToken: string | undefined;
        do {
          const page = await inspector.catalog({ pageSize: 1000, ...(pageToken ? { pageToken } : {}) });
          entries.push(...page.entries.map((entry) => `${entry.module}@${entry.version}`));
          pageToken = page.nextPageToken;
        } while (pageToken);
        return entries;
      },
      sandbox: [sandbox],
      stop: async () => {
        await inspector.close();
        const exits = [];
        for (const process of [...started].reverse()) exits.push(await process.stop());
        await removeDir(sandbox);
        if (exits.some((code) => code !== 0 && code !== null)) {
          throw new Error(
            `unclean exit (${exits.join(', ')}):\n${started.map((process) => process.stderr()).join('\n')}`,
          );
        }
      },
    };
  } catch (error) {
    for (const process of started.reverse()) await process.stop();
    await removeDir(sandbox);
    throw error;
  }
}
