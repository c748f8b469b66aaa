import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { escapePath } from '@modproxy/gomod';
import { createLogger } from '@modproxy/observability';
import { createQueueRedis, FetchQueue } from '@modproxy/queue';
import { DiskStorage, type ModuleStorage } from '@modproxy/storage';
import { GrpcStorage, startStorageGrpcServer, type StorageGrpcServer } from '@modproxy/storage-grpc';
import {
  createFixtureModules,
  createTempDir,
  parseJsonStream,
  removeDir,
  runGo,
  startAppProcess,
  startRedisServer,
  StaticGoproxy,
  type AppProcess,
  type FixtureModules,
  type RedisServer,
} from '@modproxy/testing';
import { createUpstreamFromConfig } from '@modproxy/upstream';
import { GrpcVersions } from '@modproxy/versions-grpc';
import { loadCrathensConfig } from '../config';
import { startCrathens, type RunningCrathens } from '../server';
import { CountingUpstream } from './counting-upstream';
import { SaveHold } from './holding-storage';

const root = join(__dirname, '..', '..', '..', '..');
export const crathensMain = join(root, 'dist', 'apps', 'crathens', 'main.js');
const lathensMain = join(root, 'dist', 'apps', 'lathens', 'main.js');
const silent = createLogger({ service: 'crathens-test', level: 'silent' });

/** What the go command itself downloads for module@version (direct, from the fixture repositories). */
export interface DirectDownload {
  zip: Buffer;
  mod: Buffer;
  sum: string;
}

export interface LathensUnderTest {
  process: AppProcess;
  client: GrpcVersions;
  /** lathens' own upstream: a GOPROXY whose list of a module the test sets. */
  upstream: StaticGoproxy;
  /** Makes lathens' upstream list exactly these versions of `module`. */
  publishList(module: string, versions: string[]): Promise<void>;
  /** The lathens variables for crathens. */
  env: Record<string, string>;
}

/**
 * The parts crathens works with, all real and on loopback: a Redis, the storage service over
 * gRPC (in this process, over a disk backend that can hold a save), lathens as a process, the
 * fixture git repositories. Each test takes its own queue prefix.
 */
export class CrathensHarness {
  private readonly cleanups: Array<() => Promise<unknown>> = [];
  private lathensUnderTest: LathensUnderTest | undefined;

  private constructor(
    readonly redis: RedisServer,
    readonly fixtures: FixtureModules,
    /** Holds a save of the storage service on demand. */
    readonly saves: SaveHold,
    private readonly backend: ModuleStorage,
    readonly storageServer: StorageGrpcServer,
    /** A client of the storage service, for the test's own checks. */
    readonly inspector: GrpcStorage,
    /** The storage service's token. */
    readonly token: string,
    private readonly workDir: string,
  ) {}

  static async start(): Promise<CrathensHarness> {
    const redis = await startRedisServer();
    const fixtures = await createFixtureModules();
    const workDir = await createTempDir('crathens-test-');
    const saves = new SaveHold();
    const backend = await DiskStorage.open({ root: join(workDir, 'storage') });
    const storage = saves.wrap(backend);
    const token = randomBytes(24).toString('hex');
    const storageServer = await startStorageGrpcServer({ storage, port: 0, token });
    const inspector = new GrpcStorage({ url: `127.0.0.1:${storageServer.port}`, token });
    return new CrathensHarness(redis, fixtures, saves, backend, storageServer, inspector, token, workDir);
  }

  get storageUrl(): string {
    return `127.0.0.1:${this.storageServer.port}`;
  }

  /** A fresh BullMQ prefix: tests share Redis, never queues. */
  newPrefix(): string {
    return `t-${randomBytes(4).toString('hex')}`;
  }

  /** A complete crathens environment (for a process or for loadCrathensConfig), with `extra` on top. */
  env(prefix: string, extra: Record<string, string> = {}): Record<string, string> {
    return {
      PATH: process.env['PATH'] ?? '',
      HOME: this.fixtures.env['HOME'] ?? '',
      ...this.fixtures.directEnv,
      QUEUE_REDIS_URL: this.redis.url,
      QUEUE_PREFIX: prefix,
      STORAGE_GRPC_URL: this.storageUrl,
      STORAGE_TOKEN: this.token,
      UPSTREAM: 'direct',
      GO_WORK_DIR: this.workDir,
      ADMIN_PORT: '0',
      LOG_LEVEL: 'warn',
      ...(this.lathensUnderTest?.env ?? {}),
      ...extra,
    };
  }

  /** crathens in this process, fetching through a counting upstream (direct, fixture repositories). */
  async startInProcess(
    prefix: string,
    extra: Record<string, string> = {},
  ): Promise<{ crathens: RunningCrathens; upstream: CountingUpstream }> {
    const config = loadCrathensConfig({ env: this.env(prefix, extra) });
    const upstream = new CountingUpstream(
      createUpstreamFromConfig(config, {
        fetchTimeoutMs: config.FETCH_TIMEOUT_MS,
        goEnv: this.fixtures.directEnv,
      }),
    );
    const crathens = await startCrathens(config, silent, { upstream, extensions: [] });
    this.cleanups.push(async () => {
      await crathens.shutdown();
      await upstream.close();
    });
    return { crathens, upstream };
  }

  /** crathens as a process, from its bundle; stopped at the end if the test did not. */
  async startProcess(
    prefix: string,
    extra: Record<string, string> = {},
  ): Promise<AppProcess & { adminUrl: string }> {
    const started = await startAppProcess(crathensMain, {
      env: this.env(prefix, extra),
      ready: /crathens running: admin (\S+)/,
    });
    this.cleanups.push(() => started.stop(2_000));
    return Object.assign(started, { adminUrl: started.match[1] ?? '' });
  }

  /** A producer of fetch jobs, as a proxy replica has one (its own connection and QueueEvents). */
  producer(prefix: string): FetchQueue {
    const connection = createQueueRedis(this.redis.url);
    const queue = new FetchQueue({ connection, prefix });
    this.cleanups.push(async () => {
      await queue.close();
      await connection.quit().catch(() => undefined);
      connection.disconnect();
    });
    return queue;
  }

  /** lathens as a process on the same Redis and storage service, its list cached for an hour. */
  async startLathens(): Promise<LathensUnderTest> {
    const upstreamDir = await createTempDir('crathens-lathens-upstream-');
    const upstream = await StaticGoproxy.start(upstreamDir);
    const lathensToken = randomBytes(24).toString('hex');
    const lathens = await startAppProcess(lathensMain, {
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: this.fixtures.env['HOME'] ?? '',
        REDIS_URL: this.redis.url,
        KEY_PREFIX: `${this.newPrefix()}:`,
        STORAGE_TYPE: 'grpc',
        STORAGE_GRPC_URL: this.storageUrl,
        STORAGE_TOKEN: this.token,
        GRPC_TOKEN: lathensToken,
        UPSTREAM: upstream.url,
        SOFT_TTL_MS: '3600000',
        HARD_TTL_MS: '3600000',
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        LOG_LEVEL: 'warn',
      },
      ready: /lathens listening: grpc (\S+) http (\S+)/,
    });
    const grpcUrl = lathens.match[1] ?? '';
    const client = new GrpcVersions({ url: grpcUrl, token: lathensToken });
    this.lathensUnderTest = {
      process: lathens,
      client,
      upstream,
      publishList: async (module, versions) => {
        const dir = join(upstreamDir, escapePath(module), '@v');
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'list'), versions.map((version) => `${version}\n`).join(''));
      },
      env: { LATHENS_GRPC_URL: grpcUrl, LATHENS_GRPC_TOKEN: lathensToken },
    };
    this.cleanups.push(async () => {
      await client.close();
      await lathens.stop();
      await upstream.stop();
      await removeDir(upstreamDir);
    });
    return this.lathensUnderTest;
  }

  /** What `go mod download` gives for module@version, directly from the fixture repositories. */
  async directDownload(module: string, version: string): Promise<DirectDownload> {
    const result = await runGo(['mod', 'download', '-json', `${module}@${version}`], {
      cwd: this.fixtures.root,
      env: this.fixtures.env,
    });
    const [download] = parseJsonStream(result.stdout) as Array<{
      Zip?: string;
      GoMod?: string;
      Sum?: string;
    }>;
    if (result.exitCode !== 0 || !download?.Zip || !download.GoMod || !download.Sum) {
      throw new Error(`go mod download ${module}@${version} failed: ${result.stderr}`);
    }
    return { zip: await readFile(download.Zip), mod: await readFile(download.GoMod), sum: download.Sum };
  }

  /** The stored zip's bytes. */
  async storedZip(module: string, version: string): Promise<Buffer> {
    const { stream } = await this.inspector.zip(module, version);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** Stops what the tests started (in reverse), then the shared parts. */
  async cleanUp(): Promise<void> {
    for (const cleanup of this.cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    this.lathensUnderTest = undefined;
  }

  async stop(): Promise<void> {
    await this.cleanUp();
    await this.inspector.close();
    await this.storageServer.close();
    await this.backend.close();
    await this.fixtures.close();
    await this.redis.stop();
    await removeDir(this.workDir);
  }
}
