import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { escapePath } from '@modproxy/gomod';
import { GrpcStorage } from '@modproxy/storage-grpc';
import {
  buildZip,
  createTempDir,
  removeDir,
  startAppProcess,
  startStaticGoproxy,
  type AppProcess,
  type StaticGoproxy,
} from '@modproxy/testing';
import { startStorageProcess } from './storage-process';

const root = join(__dirname, '..', '..', '..');
const main = (app: string) => join(root, 'dist', 'apps', app, 'main.js');

const MODULE = 'example.test/burst/big';
const VERSION = 'v1.0.0';
const REPLICAS = 3;
const CLIENTS = 100;
/** As large as aws-sdk-go's zip, the largest of the real-module run that found this. */
const ZIP_DATA_BYTES = 36 * 1024 * 1024;

interface Outcome {
  status?: number;
  sha256?: string;
  bytes?: number;
  body?: string;
  error?: string;
}

/** One GET on its own connection; what a client saw: a status and body, or the connection's end. */
function download(url: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false }, (res) => {
      const hash = createHash('sha256');
      const head: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        if (bytes < 512) head.push(chunk);
        bytes += chunk.length;
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          sha256: hash.digest('hex'),
          bytes,
          body: Buffer.concat(head).subarray(0, 200).toString(),
        }),
      );
      res.on('error', (error) => resolve({ status: res.statusCode ?? 0, error: `body: ${error.message}` }));
      res.on('aborted', () => resolve({ status: res.statusCode ?? 0, error: 'body aborted' }));
    });
    req.on('error', (error) => resolve({ error: error.message }));
    req.end();
  });
}

function tally(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of outcomes) {
    const key = outcome.error
      ? `no response: ${outcome.error}`
      : `${outcome.status}${outcome.status === 200 ? '' : ` ${outcome.body?.trim()}`}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/**
 * A cold burst: many clients ask at once, spread over several proxy replicas, for one zip
 * that nobody has stored yet. Every replica fetches it and saves it to the storage service
 * (MongoDB wire protocol, FerretDB) at the same moment; exactly one save wins. Every client
 * must get an answer, and the answer must be the zip. Before the fix, this test saw 1 zip,
 * 67 × 504 "no answer within 30000 ms of the upload's end" (the losing replicas' saves were
 * answered only after their backend removed its copy, on a database busy serving) and 32
 * connections closed without a status (a hundred concurrent reads of the zip stalled the
 * database past the download's idle timeout, after the 200 was committed).
 */
describe('a cold burst for one zip over three proxy replicas (storage service on MongoDB, lathens on Redis)', () => {
  const token = randomBytes(24).toString('hex');
  const started: AppProcess[] = [];
  const proxies: string[] = [];
  let upstreamDir: string;
  let upstream: StaticGoproxy;
  let zip: Buffer;
  let grpcUrl: string;

  beforeAll(async () => {
    upstreamDir = await createTempDir('cold-burst-upstream-');
    const prefix = `${MODULE}@${VERSION}/`;
    const goMod = `module ${MODULE}\n\ngo 1.22\n`;
    zip = await buildZip([
      { name: `${prefix}go.mod`, data: goMod },
      { name: `${prefix}big.go`, data: 'package big\n' },
      // Incompressible, so the zip is as large as the data and spans many GridFS chunks.
      { name: `${prefix}data.bin`, data: randomBytes(ZIP_DATA_BYTES), compress: false },
    ]);
    const dir = join(upstreamDir, escapePath(MODULE), '@v');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'list'), `${VERSION}\n`);
    await writeFile(join(dir, `${VERSION}.info`), `{"Version":"${VERSION}","Time":"2024-01-02T03:04:05Z"}`);
    await writeFile(join(dir, `${VERSION}.mod`), goMod);
    await writeFile(join(dir, `${VERSION}.zip`), zip);
    upstream = await startStaticGoproxy(upstreamDir);

    const base = { PATH: process.env['PATH'] ?? '', HOME: upstreamDir, LOG_LEVEL: 'warn' };
    const storage = await startStorageProcess({
      env: { ...base },
      token,
      backend: { mongoUri: inject('mongoUri'), databasePrefix: 'burst' },
    });
    started.push(storage);
    grpcUrl = `127.0.0.1:${storage.match[1] ?? ''}`;
    const storageEnv = { STORAGE_TYPE: 'grpc', STORAGE_GRPC_URL: grpcUrl, STORAGE_TOKEN: token };
    const lathens = await startAppProcess(main('lathens'), {
      env: {
        ...base,
        ...storageEnv,
        REDIS_URL: inject('redisUrl'),
        KEY_PREFIX: `burst-${randomBytes(4).toString('hex')}:`,
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        GRPC_TOKEN: token,
        UPSTREAM: upstream.url,
      },
      ready: /lathens listening: grpc (\S+) http (\S+)/,
    });
    started.push(lathens);
    for (let i = 0; i < REPLICAS; i++) {
      const proxy = await startAppProcess(main('proxy'), {
        env: {
          ...base,
          ...storageEnv,
          PORT: '0',
          UPSTREAM: upstream.url,
          LATHENS_GRPC_URL: lathens.match[1] ?? '',
          LATHENS_GRPC_TOKEN: token,
        },
        ready: /export GOPROXY=(\S+)/,
      });
      started.push(proxy);
      proxies.push(proxy.match[1] ?? '');
    }
  });

  afterAll(async () => {
    const exits: Array<number | null> = [];
    for (const process of [...started].reverse()) exits.push(await process.stop());
    await upstream?.stop();
    await removeDir(upstreamDir);
    expect(exits.every((code) => code === 0)).toBe(true);
  });

  it('answers every client with the zip, from one stored version', async () => {
    const path = `/${escapePath(MODULE)}/@v/${VERSION}.zip`;
    const outcomes = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) => download(`${proxies[i % REPLICAS]}${path}`)),
    );
    const expected = createHash('sha256').update(zip).digest('hex');
    const counts = tally(outcomes);
    const logs = started.map((process) => `${process.stdout()}\n${process.stderr()}`).join('\n');
    expect(counts, logs.slice(-20_000)).toEqual({ '200': CLIENTS });
    for (const outcome of outcomes) expect(outcome).toMatchObject({ sha256: expected, bytes: zip.length });

    const inspector = new GrpcStorage({ url: grpcUrl, token });
    try {
      expect((await inspector.catalog({ pageSize: 100 })).entries).toEqual([
        { module: MODULE, version: VERSION },
      ]);
    } finally {
      await inspector.close();
    }
    // Each replica fetched at most once, whatever the number of its clients.
    expect(upstream.requestCount(`/${escapePath(MODULE)}/@v/${VERSION}.zip`)).toBeLessThanOrEqual(REPLICAS);
  }, 600_000);
});
