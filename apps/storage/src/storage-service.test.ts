import { randomBytes, randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '@modproxy/observability';
import type { SaveInput } from '@modproxy/storage';
import {
  describeStorageCompliance,
  patternSha256,
  patternStream,
  streamDigest,
} from '@modproxy/storage/compliance';
import { GrpcStorage } from '@modproxy/storage-grpc';
import { createTempDir, removeDir, snapshotTree } from '@modproxy/testing';
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
    const token = randomBytes(24).toString('hex');
    const service = await startService({ STORAGE_BACKEND: 'disk', STORAGE_DIR: dir, STORAGE_TOKEN: token });
    const url = `127.0.0.1:${service.grpcPort}`;
    const owner = new GrpcStorage({ url, token });
    const intruders = [new GrpcStorage({ url, token: 'not-the-token-at-all' }), new GrpcStorage({ url })];
    const module = 'example.test/guarded';
    const version = (name: string, seed: number): SaveInput => ({
      module,
      version: name,
      info: Buffer.from(JSON.stringify({ Version: name, Time: '2024-01-02T03:04:05Z' })),
      mod: Buffer.from(`module ${module}\n`),
      zip: patternStream(256 * 1024, seed),
    });
    try {
      await owner.save(version('v1.0.0', 1));
      const before = await snapshotTree(dir);
      for (const intruder of intruders) {
        await expect(intruder.save(version('v1.1.0', 2))).rejects.toMatchObject({
          kind: 'failed-precondition',
        });
        await expect(intruder.delete(module, 'v1.0.0')).rejects.toMatchObject({
          kind: 'failed-precondition',
        });
      }
      // Nothing was written or removed: the owner sees what it stored, and the disk is unchanged.
      expect(await owner.list(module)).toEqual(['v1.0.0']);
      expect(await owner.exists(module, 'v1.1.0')).toBe(false);
      expect(await streamDigest((await owner.zip(module, 'v1.0.0')).stream)).toEqual({
        sha256: await patternSha256(256 * 1024, 1),
        size: 256 * 1024,
      });
      expect(await snapshotTree(dir)).toEqual(before);
    } finally {
      await Promise.all([owner, ...intruders].map((client) => client.close()));
      await service.shutdown();
      await removeDir(dir);
    }
  });

  it('reports ready while MongoDB answers and not ready when it does not', async () => {
    const mongo = await startFerretDb({ postgresUrl: inject('postgresUrl') });
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
