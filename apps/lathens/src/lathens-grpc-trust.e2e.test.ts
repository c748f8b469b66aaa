import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { escapePath } from '@modproxy/gomod';
import { createLogger } from '@modproxy/observability';
import { MemoryStorage } from '@modproxy/storage';
import { startStorageGrpcServer, type StorageGrpcServer } from '@modproxy/storage-grpc';
import {
  createTempDir,
  createTestCertificates,
  removeDir,
  startRedisServer,
  startStaticGoproxy,
  writeTestCertificates,
  type RedisServer,
  type StaticGoproxy,
  type TestCertificateFiles,
  type TestCertificates,
} from '@modproxy/testing';
import { GrpcVersions } from '@modproxy/versions-grpc';
import { loadLathensConfig } from './config';
import { startLathens, type RunningLathens } from './server';

const MODULE = 'example.test/trusted/lib';
const silent = createLogger({ service: 'lathens-test', level: 'silent' });
const info = (version: string) => Buffer.from(`{"Version":"${version}","Time":"2024-05-06T07:08:09Z"}`);

function store(storage: MemoryStorage, version: string): Promise<void> {
  return storage.save({
    module: MODULE,
    version,
    info: info(version),
    mod: Buffer.from(`module ${MODULE}\n`),
    zip: Readable.from([Buffer.from(`zip of ${version}`)]),
  });
}

const refused = (error: unknown) => isModuleError(error, 'unavailable') || isModuleError(error, 'timeout');

/**
 * Two lathens replicas on one Redis, each serving gRPC over TLS and reading the storage service
 * over TLS, as production runs them: every hop is a real TLS handshake on loopback.
 */
describe('lathens over TLS, trusting only what storage holds', () => {
  let redis: RedisServer;
  let upstreamDir: string;
  let upstream: StaticGoproxy;
  let certDir: string;
  let certificates: TestCertificates & TestCertificateFiles;
  const backend = new MemoryStorage();
  let storage: StorageGrpcServer;
  const replicas: RunningLathens[] = [];
  const clients: GrpcVersions[] = [];
  const token = randomBytes(24).toString('hex');
  const storageToken = randomBytes(24).toString('hex');

  beforeAll(async () => {
    redis = await startRedisServer();
    upstreamDir = await createTempDir('lathens-tls-upstream-');
    const base = join(upstreamDir, escapePath(MODULE), '@v');
    await mkdir(base, { recursive: true });
    await writeFile(join(base, 'list'), 'v1.0.0\n');
    upstream = await startStaticGoproxy(upstreamDir);
    certDir = await createTempDir('lathens-tls-');
    certificates = await writeTestCertificates(certDir);
    storage = await startStorageGrpcServer({
      storage: backend,
      port: 0,
      token: storageToken,
      tls: certificates.server,
    });
    const keyPrefix = `tls${randomUUID().slice(0, 6)}:`;
    for (let i = 0; i < 2; i++) {
      const config = loadLathensConfig({
        env: {
          GRPC_PORT: '0',
          HTTP_PORT: '0',
          GRPC_TOKEN: token,
          TLS_CERT_FILE: certificates.certFile,
          TLS_KEY_FILE: certificates.keyFile,
          REDIS_URL: redis.url,
          KEY_PREFIX: keyPrefix,
          UPSTREAM: upstream.url,
          STORAGE_TYPE: 'grpc',
          STORAGE_GRPC_URL: `127.0.0.1:${storage.port}`,
          STORAGE_TOKEN: storageToken,
          STORAGE_TLS_CA_FILE: certificates.caFile,
          RUN_WORKER: 'false',
          LOG_LEVEL: 'silent',
          SHUTDOWN_TIMEOUT_MS: '2000',
        },
      });
      const lathens = await startLathens(config, silent);
      replicas.push(lathens);
      clients.push(new GrpcVersions({ url: lathens.grpcAddress, token, tls: { ca: certificates.ca.cert } }));
    }
  });

  afterAll(async () => {
    for (const client of clients) await client.close();
    for (const lathens of replicas) await lathens.shutdown();
    await storage?.close();
    await backend.close();
    await upstream?.stop();
    await redis?.stop();
    await removeDir(upstreamDir);
    await removeDir(certDir);
  });

  it('answers a client that trusts its CA, through a storage client that trusts the storage service', async () => {
    for (const client of clients) {
      expect(await client.serving()).toBe(true);
      expect((await client.list(MODULE)).versions).toEqual(['v1.0.0']);
    }
  });

  it('refuses a plaintext client and a client that trusts another CA', async () => {
    const address = replicas[0]!.grpcAddress;
    const plain = new GrpcVersions({ url: address, token, tls: false, deadlineMs: 2_000 });
    const other = createTestCertificates({ caName: 'another CA' }).ca.cert;
    const stranger = new GrpcVersions({ url: address, token, tls: { ca: other }, deadlineMs: 2_000 });
    try {
      for (const client of [plain, stranger]) {
        const error = await client.list(MODULE).catch((e: unknown) => e);
        expect(refused(error), String(error)).toBe(true);
      }
    } finally {
      await plain.close();
      await stranger.close();
    }
  });

  it('does not list a version storage does not hold on any replica, and lists a stored one on every replica', async () => {
    const [first, second] = clients as [GrpcVersions, GrpcVersions];
    await expect(first.observe(MODULE, 'v1.99.0')).rejects.toMatchObject({ kind: 'not-found' });
    for (const client of clients) expect((await client.list(MODULE)).versions).toEqual(['v1.0.0']);

    // Stored, but lists are cached: only observe puts it in every replica's answer now.
    await store(backend, 'v1.1.0');
    for (const client of clients) expect((await client.list(MODULE)).versions).toEqual(['v1.0.0']);
    await second.observe(MODULE, 'v1.1.0');
    for (const client of clients) expect((await client.list(MODULE)).versions).toEqual(['v1.0.0', 'v1.1.0']);
  });
});
