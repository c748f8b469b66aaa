import {
  credentials,
  makeGenericClientConstructor,
  type Client,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { afterEach, describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { MemoryStorage } from '@modproxy/storage';
import { patternSha256, patternStream, streamDigest } from '@modproxy/storage/compliance';
import { createTestCertificates, waitUntil } from '@modproxy/testing';
import { GrpcStorage } from './grpc-storage';
import { STORAGE_SERVICE_NAME, startStorageGrpcServer, type StorageGrpcServer } from './storage-grpc-server';

const MiB = 1024 * 1024;
const module = 'example.com/served';

interface HealthResponse {
  status: string;
}

/** grpc.health.v1.Health as a client, from the same proto the server uses. */
interface HealthClient extends Client {
  check(
    request: { service: string },
    callback: (error: ServiceError | null, response?: HealthResponse) => void,
  ): void;
  watch(request: { service: string }): ClientReadableStream<HealthResponse>;
}

const HealthClientConstructor = makeGenericClientConstructor(healthService, 'grpc.health.v1.Health');

function healthClient(port: number): HealthClient {
  return new HealthClientConstructor(
    `127.0.0.1:${port}`,
    credentials.createInsecure(),
  ) as unknown as HealthClient;
}

function check(client: HealthClient, service: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.check({ service }, (error, response) => (error ? reject(error) : resolve(response?.status ?? '')));
  });
}

function saveInput(version: string, size: number, seed: number) {
  return {
    module,
    version,
    info: Buffer.from(`{"Version":"${version}"}`),
    mod: Buffer.from(`module ${module}\n`),
    zip: patternStream(size, seed),
  };
}

describe('startStorageGrpcServer', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function start(
    options: Partial<Parameters<typeof startStorageGrpcServer>[0]> = {},
  ): Promise<StorageGrpcServer> {
    const storage = new MemoryStorage();
    const server = await startStorageGrpcServer({ storage, port: 0, ...options });
    cleanups.push(
      () => storage.close(),
      () => server.close(),
    );
    return server;
  }

  it('binds a free port on 127.0.0.1 and reports SERVING for the server and the storage service', async () => {
    const server = await start({ token: 'health needs none' });
    expect(server.port).toBeGreaterThan(0);
    const client = healthClient(server.port);
    cleanups.push(() => client.close());
    expect(await check(client, '')).toBe('SERVING');
    expect(await check(client, STORAGE_SERVICE_NAME)).toBe('SERVING');
    await expect(check(client, 'no.such.Service')).rejects.toMatchObject({ code: 5 });
  });

  it('turns NOT_SERVING on close and cuts off calls that outlive the grace period', async () => {
    const server = await start({ shutdownGraceMs: 300 });
    const client = healthClient(server.port);
    cleanups.push(() => client.close());
    const watch = client.watch({ service: STORAGE_SERVICE_NAME });
    const seen: string[] = [];
    const watchEnded = new Promise<void>((resolve) => {
      watch.on('data', (response: HealthResponse) => seen.push(response.status));
      watch.on('error', () => resolve());
      watch.on('end', () => resolve());
    });
    await waitUntil(() => seen.length > 0, { what: 'the watch sees SERVING' });

    // A health watch never ends by itself, so only the forced shutdown can finish this.
    await server.close();
    await watchEnded;
    expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
  });

  it('lets a running zip download finish during a graceful close and refuses new calls', async () => {
    const server = await start();
    const storage = new GrpcStorage({ url: `127.0.0.1:${server.port}` });
    cleanups.push(() => storage.close());
    await storage.save(saveInput('v1.0.0', 16 * MiB, 1));
    const zip = await storage.zip(module, 'v1.0.0');

    const closed = server.close();
    const other = new GrpcStorage({ url: `127.0.0.1:${server.port}`, deadlineMs: 2_000 });
    cleanups.push(() => other.close());
    await expect(other.exists(module, 'v1.0.0')).rejects.toSatisfy((error) =>
      isModuleError(error, 'unavailable'),
    );

    expect(await streamDigest(zip.stream)).toEqual({
      sha256: await patternSha256(16 * MiB, 1),
      size: 16 * MiB,
    });
    await closed;
  });

  it('serves TLS to clients that trust its CA, and nothing to plaintext clients or clients of another CA', async () => {
    const { ca, server: identity } = createTestCertificates();
    const server = await start({ tls: identity });

    const secure = new GrpcStorage({ url: `127.0.0.1:${server.port}`, tls: { ca: ca.cert } });
    cleanups.push(() => secure.close());
    await secure.save(saveInput('v1.0.0', MiB, 2));
    expect(await secure.list(module)).toEqual(['v1.0.0']);

    const refused = (error: unknown) =>
      isModuleError(error, 'unavailable') || isModuleError(error, 'timeout');
    const plain = new GrpcStorage({ url: `127.0.0.1:${server.port}`, tls: false, deadlineMs: 2_000 });
    cleanups.push(() => plain.close());
    const plainError = await plain.list(module).catch((e: unknown) => e);
    expect(refused(plainError), String(plainError)).toBe(true);

    const otherCa = createTestCertificates({ caName: 'another CA' }).ca;
    const stranger = new GrpcStorage({
      url: `127.0.0.1:${server.port}`,
      tls: { ca: otherCa.cert },
      deadlineMs: 2_000,
    });
    cleanups.push(() => stranger.close());
    const strangerError = await stranger.list(module).catch((e: unknown) => e);
    expect(refused(strangerError), String(strangerError)).toBe(true);
  });
});
