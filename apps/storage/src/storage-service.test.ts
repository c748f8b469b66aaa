import { randomBytes, randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '@modproxy/observability';
import { describeStorageCompliance } from '@modproxy/storage/compliance';
import { GrpcStorage } from '@modproxy/storage-grpc';
import { createTempDir, removeDir } from '@modproxy/testing';
import { startFerretDb } from '@modproxy/storage-mongo/testing';
import { loadStorageConfig } from './config';
import { type RunningStorageService, startStorageService } from './service';

const uri = inject('ferretDbUri');
const silent = createLogger({ service: 'storage-test', level: 'silent' });
let admin: MongoClient;

beforeAll(async () => {
  admin = await MongoClient.connect(uri);
});
afterAll(() => admin.close());

async function startService(env: Record<string, string>): Promise<RunningStorageService> {
  const config = loadStorageConfig({ env: { GRPC_PORT: '0', HTTP_PORT: '0', LOG_LEVEL: 'silent', ...env } });
  return startStorageService(config, silent);
}

// The storage port's compliance suite, through the gRPC client and the storage service app to MongoDB.
describeStorageCompliance('grpc → storage service → mongo', async () => {
  const database = `grpc_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const token = randomBytes(24).toString('hex');
  const service = await startService({
    STORAGE_BACKEND: 'mongo',
    MONGODB_URI: uri,
    MONGODB_DATABASE: database,
    STORAGE_TOKEN: token,
  });
  const storage = new GrpcStorage({ url: `127.0.0.1:${service.grpcPort}`, token });
  return {
    storage,
    async cleanup() {
      await storage.close();
      await service.shutdown();
      await admin.db(database).dropDatabase();
    },
  };
});

describe('storage service', () => {
  it('refuses writes without the shared token', async () => {
    const dir = await createTempDir('storage-service-test-');
    const service = await startService({
      STORAGE_BACKEND: 'disk',
      STORAGE_DIR: dir,
      STORAGE_TOKEN: randomBytes(24).toString('hex'),
    });
    const intruder = new GrpcStorage({ url: `127.0.0.1:${service.grpcPort}`, token: 'not-the-token-at-all' });
    try {
      await expect(intruder.list('example.test/x')).rejects.toMatchObject({ kind: 'failed-precondition' });
    } finally {
      await intruder.close();
      await service.shutdown();
      await removeDir(dir);
    }
  });

  it('reports ready while MongoDB answers and not ready when it does not', async () => {
    const mongo = await startFerretDb();
    const service = await startService({
      STORAGE_BACKEND: 'mongo',
      MONGODB_URI: mongo.uri,
      READINESS_INTERVAL_MS: '100',
    });
    const readyz = async () => (await fetch(`http://127.0.0.1:${service.httpPort}/readyz`)).status;
    try {
      expect(await readyz()).toBe(200);
      const metrics = await (await fetch(`http://127.0.0.1:${service.httpPort}/metrics`)).text();
      expect(metrics).toContain('modproxy_storage_ready 1');
      await mongo.stop();
      await expect.poll(readyz, { timeout: 15_000 }).toBe(503);
    } finally {
      await service.shutdown().catch(() => undefined);
      await mongo.stop();
    }
  });

  it.each([
    [{ STORAGE_BACKEND: 'mongo' }, /MONGODB_URI: is required when STORAGE_BACKEND=mongo/],
    [{ STORAGE_BACKEND: 'mongo', MONGODB_URI: 'http://x' }, /MONGODB_URI: must start with mongodb:\/\//],
    [{ STORAGE_TOKEN: 'short' }, /STORAGE_TOKEN: must be at least 16 characters/],
    [{ TLS_CERT_FILE: '/x.pem' }, /TLS_CERT_FILE: TLS_CERT_FILE and TLS_KEY_FILE go together/],
  ])('names the variable of a wrong configuration: %o', (env, message) => {
    expect(() => loadStorageConfig({ env })).toThrow(message);
  });
});
