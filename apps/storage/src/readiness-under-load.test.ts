import { randomBytes, randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '@modproxy/observability';
import { patternStream, streamDigest } from '@modproxy/storage/compliance';
import { GrpcStorage } from '@modproxy/storage-grpc';
import { startTcpRelay, type TcpRelay } from '@modproxy/testing';
import { loadStorageConfig } from './config';
import { startStorageService, type RunningStorageService } from './service';

const uri = inject('ferretDbUri');
const silent = createLogger({ service: 'storage-test', level: 'silent' });
const module = 'example.test/readiness';

interface Scrape {
  ready: number;
  failuresInRow: number;
  okPings: number;
  failedPings: number;
  readyz: number;
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

/**
 * The storage service on MongoDB's wire protocol (FerretDB) behind a relay that makes the
 * database slow or stalls it, as a database under load is: readiness must ride out slow and
 * occasionally late pings, and turn off only when the database has stopped answering.
 */
describe('storage service readiness against a slow database', () => {
  const token = randomBytes(24).toString('hex');
  const database = `ready_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  let relay: TcpRelay;
  let service: RunningStorageService;
  let storage: GrpcStorage;

  /** One /metrics response (ready and failures come from the same instant), then /readyz. */
  async function scrape(): Promise<Scrape> {
    const text = await (await fetch(`http://127.0.0.1:${service.httpPort}/metrics`)).text();
    const readyz = await fetch(`http://127.0.0.1:${service.httpPort}/readyz`);
    await readyz.text();
    return {
      ready: metric(text, 'modproxy_storage_ready'),
      failuresInRow: metric(text, 'modproxy_storage_readiness_consecutive_failures'),
      okPings: metric(text, 'modproxy_storage_readiness_pings_total{result="ok"}'),
      failedPings: metric(text, 'modproxy_storage_readiness_pings_total{result="failed"}'),
      readyz: readyz.status,
    };
  }

  /** Scrapes until `done`, returning every scrape seen; fails after a minute. */
  async function scrapeUntil(done: (scrape: Scrape) => boolean): Promise<Scrape[]> {
    const seen: Scrape[] = [];
    const deadline = Date.now() + 60_000;
    for (;;) {
      const current = await scrape();
      seen.push(current);
      if (done(current)) return seen;
      if (Date.now() > deadline) throw new Error(`condition not reached: ${JSON.stringify(seen.slice(-5))}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  beforeAll(async () => {
    const target = new URL(uri);
    relay = await startTcpRelay({ targetPort: Number(target.port) });
    target.port = String(relay.port);
    const config = loadStorageConfig({
      env: {
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        STORAGE_BACKEND: 'mongo',
        MONGODB_URI: target.toString(),
        MONGODB_DATABASE: database,
        STORAGE_TOKEN: token,
        READINESS_INTERVAL_MS: '100',
        READINESS_TIMEOUT_MS: '2000',
        READINESS_FAILURES: '3',
        LOG_LEVEL: 'silent',
      },
    });
    service = await startStorageService(config, silent);
    storage = new GrpcStorage({ url: `127.0.0.1:${service.grpcPort}`, token });
  });

  afterAll(async () => {
    relay?.resume();
    await storage?.close();
    await service?.shutdown();
    await relay?.close();
    const admin = await MongoClient.connect(uri);
    await admin.db(database).dropDatabase();
    await admin.close();
  });

  it('stays ready while every round trip to the database is slow, and still stores and serves', async () => {
    const before = await scrape();
    expect(before).toMatchObject({ ready: 1, readyz: 200 });
    relay.setDelay(250);
    // Each ping now takes at least two delays; several in a row must all count as answered.
    const seen = await scrapeUntil((current) => current.okPings >= before.okPings + 4);
    for (const current of seen) expect(current).toMatchObject({ ready: 1, readyz: 200, failuresInRow: 0 });

    await storage.save({
      module,
      version: 'v1.0.0',
      info: Buffer.from('{"Version":"v1.0.0"}'),
      mod: Buffer.from(`module ${module}\n`),
      zip: patternStream(300_000, 3),
    });
    expect((await streamDigest((await storage.zip(module, 'v1.0.0')).stream)).size).toBe(300_000);
    relay.setDelay(0);
  });

  it('turns off only after three pings in a row failed, each at its own deadline, and on again when the database answers', async () => {
    const before = await scrape();
    expect(before).toMatchObject({ ready: 1, readyz: 200 });
    relay.stall();
    const seen = await scrapeUntil((current) => current.ready === 0 && current.readyz === 503);
    // Not ready was never reported before the third consecutive failure...
    for (const current of seen) {
      if (current.ready === 0) expect(current.failuresInRow).toBeGreaterThanOrEqual(3);
    }
    // ...and failed pings were seen while the service still said it was ready.
    expect(seen.some((current) => current.ready === 1 && current.failuresInRow >= 1)).toBe(true);
    expect(seen.at(-1)!.failedPings - before.failedPings).toBeGreaterThanOrEqual(3);

    relay.resume();
    const back = await scrapeUntil((current) => current.ready === 1);
    expect(back.at(-1)).toMatchObject({ readyz: 200, failuresInRow: 0 });
    expect(await storage.exists(module, 'v1.0.0')).toBe(true);
  });
});
