import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { inject } from 'vitest';
import { GrpcStorage } from '@modproxy/storage-grpc';
import { describeGoCommandScenarios, startAppProcess } from '@modproxy/testing';

const root = join(__dirname, '..', '..', '..');
const main = (app: string) => join(root, 'dist', 'apps', app, 'main.js');

/**
 * The production shape: the proxy process keeps nothing itself and stores every module version
 * in the storage service, over gRPC with a shared token, backed by MongoDB's wire protocol.
 */
describeGoCommandScenarios('proxy → storage service over gRPC → MongoDB (FerretDB)', async (fixtures) => {
  const token = randomBytes(24).toString('hex');
  const base = { PATH: process.env['PATH'] ?? '', HOME: fixtures.env['HOME'] ?? '', LOG_LEVEL: 'warn' };
  const storage = await startAppProcess(main('storage'), {
    env: {
      ...base,
      STORAGE_BACKEND: 'mongo',
      MONGODB_URI: inject('mongoUri'),
      MONGODB_DATABASE: `e2e_${randomBytes(4).toString('hex')}`,
      GRPC_PORT: '0',
      HTTP_PORT: '0',
      STORAGE_TOKEN: token,
    },
    ready: /grpc 127\.0\.0\.1:(\d+) http (\d+)/,
  });
  const grpcUrl = `127.0.0.1:${storage.match[1] ?? ''}`;
  const proxy = await startAppProcess(main('proxy'), {
    env: {
      ...base,
      ...fixtures.directEnv,
      PORT: '0',
      STORAGE_TYPE: 'grpc',
      STORAGE_GRPC_URL: grpcUrl,
      STORAGE_TOKEN: token,
      UPSTREAM: 'direct',
    },
    ready: /export GOPROXY=(\S+)/,
  });
  const inspector = new GrpcStorage({ url: grpcUrl, token });
  return {
    url: proxy.match[1] ?? '',
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
    stop: async () => {
      await inspector.close();
      const proxyExit = await proxy.stop();
      const storageExit = await storage.stop();
      if (proxyExit !== 0 || storageExit !== 0) {
        throw new Error(
          `unclean exit: proxy ${String(proxyExit)}, storage ${String(storageExit)}\n${proxy.stderr()}\n${storage.stderr()}`,
        );
      }
    },
  };
});
