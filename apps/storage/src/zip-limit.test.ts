import { randomBytes, randomUUID } from 'node:crypto';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { storageV1 } from '@modproxy/contracts';
import { isModuleError } from '@modproxy/errors';
import { createLogger } from '@modproxy/observability';
import { patternBuffer, patternStream } from '@modproxy/storage/compliance';
import { bearerMetadata } from '@modproxy/grpc';
import { GrpcStorage } from '@modproxy/storage-grpc';
import { createTempDir, removeDir } from '@modproxy/testing';
import { loadStorageConfig } from './config';
import { startStorageService } from './service';

const uri = inject('ferretDbUri');
const silent = createLogger({ service: 'storage-test', level: 'silent' });
const module = 'example.test/limited';
const LIMIT = 256 * 1024;
const MiB = 1024 * 1024;

describe('the module zip limit of the storage service', () => {
  it('is 500 MiB unless configured lower, and never higher', () => {
    expect(loadStorageConfig({ env: {} }).MAX_ZIP_BYTES).toBe(500 * MiB);
    expect(loadStorageConfig({ env: { MAX_ZIP_BYTES: '1048576' } }).MAX_ZIP_BYTES).toBe(MiB);
    expect(() => loadStorageConfig({ env: { MAX_ZIP_BYTES: String(501 * MiB) } })).toThrow(
      /MAX_ZIP_BYTES: must not exceed 524288000/,
    );
    expect(() => loadStorageConfig({ env: { MAX_ZIP_BYTES: 'big' } })).toThrow(/MAX_ZIP_BYTES: /);
  });

  describe.each(['memory', 'disk', 'mongo'] as const)('on the %s backend', (backend) => {
    const token = randomBytes(24).toString('hex');
    const database = `limit_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    let dir: string;
    let service: Awaited<ReturnType<typeof startStorageService>>;
    let storage: GrpcStorage;
    let wire: storageV1.StorageServiceClient;

    beforeAll(async () => {
      dir = await createTempDir('storage-limit-');
      const config = loadStorageConfig({
        env: {
          GRPC_PORT: '0',
          HTTP_PORT: '0',
          STORAGE_BACKEND: backend,
          STORAGE_DIR: dir,
          MONGODB_URI: uri,
          MONGODB_DATABASE: database,
          STORAGE_TOKEN: token,
          MAX_ZIP_BYTES: String(LIMIT),
          LOG_LEVEL: 'silent',
        },
      });
      service = await startStorageService(config, silent);
      storage = new GrpcStorage({ url: `127.0.0.1:${service.grpcPort}`, token });
      wire = new storageV1.StorageServiceClient(
        `127.0.0.1:${service.grpcPort}`,
        credentials.createInsecure(),
      );
    });
    afterAll(async () => {
      wire?.close();
      await storage?.close();
      await service?.shutdown();
      await removeDir(dir);
      if (backend === 'mongo') {
        const admin = await MongoClient.connect(uri);
        await admin.db(database).dropDatabase();
        await admin.close();
      }
    });

    const input = (version: string, size: number) => ({
      module,
      version,
      info: Buffer.from(`{"Version":"${version}"}`),
      mod: Buffer.from(`module ${module}\n`),
      zip: patternStream(size, 7),
    });

    async function nothingStored(version: string): Promise<void> {
      expect(await storage.exists(module, version)).toBe(false);
      expect(await storage.list(module)).not.toContain(version);
      expect((await storage.catalog({ pageSize: 100 })).entries).not.toContainEqual({ module, version });
    }

    it('refuses a zip one byte over the limit whose header gives no size, and stores nothing', async () => {
      // GrpcStorage never declares the size up front: only the bytes that arrive tell.
      const error = await storage.save(input('v1.0.1', LIMIT + 1)).catch((e: unknown) => e);
      expect(isModuleError(error, 'invalid-argument'), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/exceeds the limit of 262144 bytes/);
      await nothingStored('v1.0.1');
    });

    it('refuses a header that declares a size over the limit before any byte', async () => {
      const code = await new Promise<number | undefined>((resolve) => {
        const call = wire.save(bearerMetadata(token), (error: ServiceError | null) => resolve(error?.code));
        call.write({
          part: {
            $case: 'header',
            value: {
              module,
              version: 'v1.0.2',
              info: Buffer.from('{"Version":"v1.0.2"}'),
              mod: Buffer.from(`module ${module}\n`),
              zipSha256: '',
              zipSize: LIMIT + 1,
            },
          },
        });
        call.write({ part: { $case: 'chunk', value: patternBuffer(1024, 1) } });
      });
      expect(code).toBe(status.INVALID_ARGUMENT);
      await nothingStored('v1.0.2');
    });

    it('stores a zip of exactly the limit', async () => {
      await storage.save(input('v1.0.0', LIMIT));
      expect((await storage.zip(module, 'v1.0.0')).size).toBe(LIMIT);
    });
  });
});
