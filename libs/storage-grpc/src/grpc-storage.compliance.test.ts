import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskStorage, MemoryStorage, type ModuleStorage } from '@modproxy/storage';
import { describeStorageCompliance, type StorageUnderTest } from '@modproxy/storage/compliance';
import { GrpcStorage } from './grpc-storage';
import { startStorageGrpcServer } from './storage-grpc-server';

/** The port's contract must hold unchanged through client → gRPC → server → backend. */
async function overGrpc(
  backing: ModuleStorage,
  removeBacking: () => Promise<void>,
): Promise<StorageUnderTest> {
  const server = await startStorageGrpcServer({
    storage: backing,
    host: '127.0.0.1',
    port: 0,
    token: 'compliance',
  });
  const storage = new GrpcStorage({ url: `127.0.0.1:${server.port}`, token: 'compliance' });
  return {
    storage,
    cleanup: async () => {
      await storage.close();
      await server.close();
      await backing.close();
      await removeBacking();
    },
  };
}

describeStorageCompliance('GrpcStorage → MemoryStorage', () =>
  overGrpc(new MemoryStorage(), async () => undefined),
);

describeStorageCompliance('GrpcStorage → DiskStorage', async () => {
  const root = await mkdtemp(join(tmpdir(), 'modproxy-grpc-disk-'));
  const backing = await DiskStorage.open({ root });
  return overGrpc(backing, () => rm(root, { recursive: true, force: true }));
});
