import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { escapePath } from '@modproxy/gomod';
import {
  buildZip,
  createTempDir,
  removeDir,
  startAppProcess,
  startStaticGoproxy,
  writeTestCertificates,
  type AppProcess,
  type StaticGoproxy,
  type TestCertificateFiles,
} from '@modproxy/testing';
import { startStorageProcess } from './storage-process';

const root = join(__dirname, '..', '..', '..');
const main = (app: string) => join(root, 'dist', 'apps', app, 'main.js');

const MODULE = 'example.test/tls/lib';
const VERSION = 'v1.2.3';

/**
 * Every gRPC hop over TLS, as processes: the proxy reads the storage service and asks lathens
 * over TLS, and lathens reads the storage service over TLS; each side trusts only the test CA.
 */
describe('TLS on every gRPC hop (proxy → lathens → storage service, proxy → storage service)', () => {
  const token = randomBytes(24).toString('hex');
  const started: AppProcess[] = [];
  let dir: string;
  let certificates: TestCertificateFiles;
  let upstream: StaticGoproxy;
  let zip: Buffer;
  let lathensUrl: string;
  let storageEnv: Record<string, string>;
  const base = () => ({ PATH: process.env['PATH'] ?? '', HOME: dir, LOG_LEVEL: 'warn' });

  async function startProxy(env: Record<string, string>): Promise<string> {
    const proxy = await startAppProcess(main('proxy'), {
      env: {
        ...base(),
        ...storageEnv,
        PORT: '0',
        UPSTREAM: upstream.url,
        LATHENS_GRPC_URL: lathensUrl,
        LATHENS_GRPC_TOKEN: token,
        ...env,
      },
      ready: /export GOPROXY=(\S+)/,
    });
    started.push(proxy);
    return proxy.match[1] ?? '';
  }

  beforeAll(async () => {
    dir = await createTempDir('tls-e2e-');
    certificates = await writeTestCertificates(dir);
    const prefix = `${MODULE}@${VERSION}/`;
    const goMod = `module ${MODULE}\n\ngo 1.22\n`;
    zip = await buildZip([
      { name: `${prefix}go.mod`, data: goMod },
      { name: `${prefix}lib.go`, data: 'package lib\n' },
    ]);
    const upstreamDir = join(dir, 'upstream');
    const versions = join(upstreamDir, escapePath(MODULE), '@v');
    await mkdir(versions, { recursive: true });
    await writeFile(join(versions, 'list'), `${VERSION}\n`);
    await writeFile(
      join(versions, `${VERSION}.info`),
      `{"Version":"${VERSION}","Time":"2024-01-02T03:04:05Z"}`,
    );
    await writeFile(join(versions, `${VERSION}.mod`), goMod);
    await writeFile(join(versions, `${VERSION}.zip`), zip);
    upstream = await startStaticGoproxy(upstreamDir);

    const storage = await startStorageProcess({
      env: { ...base(), TLS_CERT_FILE: certificates.certFile, TLS_KEY_FILE: certificates.keyFile },
      token,
      backend: { mongoUri: inject('mongoUri'), databasePrefix: 'tls' },
    });
    started.push(storage);
    storageEnv = {
      STORAGE_TYPE: 'grpc',
      STORAGE_GRPC_URL: `127.0.0.1:${storage.match[1] ?? ''}`,
      STORAGE_TOKEN: token,
      STORAGE_TLS_CA_FILE: certificates.caFile,
    };
    const lathens = await startAppProcess(main('lathens'), {
      env: {
        ...base(),
        ...storageEnv,
        REDIS_URL: inject('redisUrl'),
        KEY_PREFIX: `tls-${randomBytes(4).toString('hex')}:`,
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        GRPC_TOKEN: token,
        TLS_CERT_FILE: certificates.certFile,
        TLS_KEY_FILE: certificates.keyFile,
        UPSTREAM: upstream.url,
      },
      ready: /lathens listening: grpc (\S+) http (\S+)/,
    });
    started.push(lathens);
    lathensUrl = lathens.match[1] ?? '';
  });

  afterAll(async () => {
    const exits: Array<number | null> = [];
    for (const process of [...started].reverse()) exits.push(await process.stop());
    await upstream?.stop();
    await removeDir(dir);
    expect(exits.every((code) => code === 0)).toBe(true);
  });

  it('serves list, zip and readiness through TLS to lathens and the storage service', async () => {
    const proxy = await startProxy({ LATHENS_TLS_CA_FILE: certificates.caFile });
    const zipAnswer = await fetch(`${proxy}/${escapePath(MODULE)}/@v/${VERSION}.zip`);
    expect(zipAnswer.status).toBe(200);
    const bytes = Buffer.from(await zipAnswer.arrayBuffer());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(
      createHash('sha256').update(zip).digest('hex'),
    );
    // Answered through lathens; readiness is not degraded only while its health check passes over TLS.
    const list = await fetch(`${proxy}/${escapePath(MODULE)}/@v/list`);
    expect(list.status).toBe(200);
    expect(await list.text()).toBe(`${VERSION}\n`);
    expect((await (await fetch(`${proxy}/readyz`)).text()).trim()).toBe('ok');
  });

  it('finds lathens unreachable from a proxy that speaks plaintext to it', async () => {
    const proxy = await startProxy({});
    const ready = await fetch(`${proxy}/readyz`);
    expect(await ready.text()).toMatch(/^degraded: lathens unavailable/);
  });
});
