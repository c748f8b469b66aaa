import { credentials, makeGenericClientConstructor, type Client, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { GrpcServedCall } from '@modproxy/grpc';
import { MemoryStorage } from '@modproxy/storage';
import { patternStream, streamDigest } from '@modproxy/storage/compliance';
import { waitUntil } from '@modproxy/testing';
import { GrpcStorage } from './grpc-storage';
import { startStorageGrpcServer } from './storage-grpc-server';

const module = 'example.com/observed';
const MiB = 1024 * 1024;

interface HealthClient extends Client {
  check(request: { service: string }, callback: (error: ServiceError | null) => void): void;
}
const HealthClientConstructor = makeGenericClientConstructor(healthService, 'grpc.health.v1.Health');

describe('gRPC calls and zip bytes observed by the storage server', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function start() {
    const storage = new MemoryStorage();
    const calls: GrpcServedCall[] = [];
    const bytes = { served: 0, saved: 0 };
    const server = await startStorageGrpcServer({
      storage,
      port: 0,
      token: 'observed-token-0123456789',
      onCall: (call) => calls.push(call),
      zipBytes: {
        served: (n) => (bytes.served += n),
        saved: (n) => (bytes.saved += n),
      },
    });
    cleanups.push(
      () => storage.close(),
      () => server.close(),
    );
    const client = new GrpcStorage({ url: `127.0.0.1:${server.port}`, token: 'observed-token-0123456789' });
    cleanups.push(() => client.close());
    return { server, client, calls, bytes };
  }

  it('tells method, code and the domain kind of each call, and counts zip bytes served and stored', async () => {
    const { client, calls, bytes } = await start();
    const size = 3 * MiB + 17;
    await client.save({
      module,
      version: 'v1.0.0',
      info: Buffer.from('{"Version":"v1.0.0"}'),
      mod: Buffer.from(`module ${module}\n`),
      zip: patternStream(size, 7),
    });
    // A second save of the same version stores nothing more.
    await expect(
      client.save({
        module,
        version: 'v1.0.0',
        info: Buffer.from('{"Version":"v1.0.0"}'),
        mod: Buffer.from(`module ${module}\n`),
        zip: patternStream(size, 7),
      }),
    ).rejects.toMatchObject({ kind: 'already-exists' });
    await expect(client.info(module, 'v9.9.9')).rejects.toMatchObject({ kind: 'not-found' });
    const zip = await client.zip(module, 'v1.0.0');
    await streamDigest(zip.stream);
    await waitUntil(() => calls.length >= 4);

    expect(calls.map(({ method, code, result }) => ({ method, code, result }))).toEqual([
      { method: 'Save', code: 'OK', result: 'ok' },
      { method: 'Save', code: 'ALREADY_EXISTS', result: 'already-exists' },
      { method: 'GetInfo', code: 'NOT_FOUND', result: 'not-found' },
      { method: 'GetZip', code: 'OK', result: 'ok' },
    ]);
    expect(new Set(calls.map((call) => call.service))).toEqual(
      new Set(['modproxy.storage.v1.StorageService']),
    );
    expect(bytes).toEqual({ served: size, saved: size });
  });

  it('counts refused calls by their code, and leaves health checks out', async () => {
    const { server, calls } = await start();
    const intruder = new GrpcStorage({ url: `127.0.0.1:${server.port}`, token: 'wrong-token-0123456789' });
    cleanups.push(() => intruder.close());
    await expect(intruder.exists(module, 'v1.0.0')).rejects.toBeDefined();
    const health = new HealthClientConstructor(
      `127.0.0.1:${server.port}`,
      credentials.createInsecure(),
    ) as unknown as HealthClient;
    cleanups.push(() => health.close());
    await new Promise<void>((resolve, reject) =>
      health.check({ service: '' }, (error) => (error ? reject(error) : resolve())),
    );
    await waitUntil(() => calls.length >= 1);
    expect(calls.map(({ method, code }) => ({ method, code }))).toEqual([
      { method: 'Stat', code: 'UNAUTHENTICATED' },
    ]);
  });
});
