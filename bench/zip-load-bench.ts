/**
 * Warm zip downloads under load through the production shape: `--connections` clients for
 * `--duration` seconds against the proxy (STORAGE_TYPE=grpc) → the storage service → FerretDB
 * on PostgreSQL, with lathens on Redis in front of list/latest, while the storage service's
 * gRPC health (a Watch stream) and its /readyz are watched the whole time. Beside it, as
 * references: the same shape on the disk backend, and nginx serving the same files as a
 * GOPROXY tree (the static ceiling) when it is installed.
 *
 *   npm run bench:zip-load -- [--duration 60] [--connections 64] [--zip-kib 32] [--zips 1,16]
 *                             [--backends mongo,disk] [--loader wrk|autocannon] [--install-tools]
 *                             [--ferretdb-backend postgresql|sqlite] [--ballast-mib 128] [--proxy-cache]
 *
 * `--zips 16` spreads the requests over 16 versions (so the storage service serves several
 * zips at once; the proxy shares concurrent reads of one zip). A large zip is stored beside
 * them and never asked for (`--ballast-mib`, about 500 GridFS chunks by default, as many as the
 * real module files behind issue 10's figures): FerretDB answers a query for one zip's chunks by
 * reading the whole chunks table, so what the table holds is what a warm read costs. The
 * proxy's content cache is off (CACHE_MEMORY_MAX_BYTES=0, CACHE_MAX_BYTES=0): a warm hit would
 * not reach the storage service, which is what this bench loads; `--proxy-cache` keeps it on. wrk is the load generator when
 * installed, else autocannon; `--install-tools` installs Debian's wrk and nginx-light with
 * apt-get when missing (root only). Every process shares the machine's cores with the load
 * generator. The storage service pings its database every second here (READINESS_INTERVAL_MS),
 * five times as often as by default, so a database that stalls under the load shows sooner.
 * The bench fails (exit 1) on any non-2xx answer, socket error, NOT_SERVING or changed zip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import {
  type Client,
  type ClientReadableStream,
  credentials,
  makeGenericClientConstructor,
} from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { GrpcStorage } from '@modproxy/storage-grpc';
import {
  ensureFerretDb,
  type FerretDbBackend,
  type FerretDbServer,
  startFerretDb,
} from '@modproxy/storage-mongo/testing';
import {
  type AppProcess,
  createTempDir,
  getFreePort,
  removeDir,
  startAppProcess,
  startRedisServer,
  type RedisServer,
} from '@modproxy/testing';
import {
  bundleBenchApp,
  hasWrk,
  load,
  loadWithWrk,
  type LoadResult,
  parseArgs,
  peakRssMiB,
  printTable,
} from './bench-support';

const root = join(dirname(process.argv[1] ?? '.'), '..', '..');
const MODULE = 'bench.test/zipload';
const KiB = 1024;

type BackendName = 'mongo' | 'disk';
type Row = Record<string, string | number>;

interface Options {
  durationSeconds: number;
  connections: number;
  zipKiB: number;
  zipCounts: number[];
  backends: BackendName[];
  loader: 'wrk' | 'autocannon';
  installTools: boolean;
  proxyCache: boolean;
  ferretDbBackend: FerretDbBackend;
  ballastMiB: number;
}

interface Zip {
  version: string;
  data: Buffer;
  sha256: string;
}

const bundles = { storage: '', proxy: '', lathens: '' };

function readOptions(): Options {
  const args = parseArgs(process.argv.slice(2));
  const positive = (text: string | undefined, name: string): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`);
    return value;
  };
  const backends = (args.get('backends') ?? 'mongo,disk').split(',').filter(Boolean);
  for (const backend of backends) {
    if (backend !== 'mongo' && backend !== 'disk') throw new Error(`--backends: unknown backend ${backend}`);
  }
  const loader = args.get('loader') ?? (hasWrk() ? 'wrk' : 'autocannon');
  if (loader !== 'wrk' && loader !== 'autocannon') throw new Error('--loader: wrk or autocannon');
  const ferretDbBackend = args.get('ferretdb-backend') ?? 'postgresql';
  if (ferretDbBackend !== 'postgresql' && ferretDbBackend !== 'sqlite')
    throw new Error(`--ferretdb-backend: postgresql or sqlite, not ${ferretDbBackend}`);
  const ballastMiB = Number(args.get('ballast-mib') ?? 128);
  if (!Number.isInteger(ballastMiB) || ballastMiB < 0)
    throw new Error('--ballast-mib must be a whole number of MiB');
  return {
    ballastMiB,
    ferretDbBackend,
    durationSeconds: positive(args.get('duration') ?? '60', 'duration'),
    connections: positive(args.get('connections') ?? '64', 'connections'),
    zipKiB: positive(args.get('zip-kib') ?? '32', 'zip-kib'),
    zipCounts: (args.get('zips') ?? '1,16').split(',').map((n) => positive(n, 'zips')),
    backends: backends as BackendName[],
    loader,
    installTools: args.has('install-tools'),
    proxyCache: args.has('proxy-cache'),
  };
}

function makeZips(count: number, sizeKiB: number): Zip[] {
  return Array.from({ length: count }, (_, i) => {
    // Random bytes: incompressible, the same size as a small module's zip.
    const data = randomBytes(sizeKiB * KiB);
    return { version: `v1.0.${i}`, data, sha256: createHash('sha256').update(data).digest('hex') };
  });
}

const zipPath = (zip: Zip) => `/${MODULE}/@v/${zip.version}.zip`;

/** wrk and nginx from Debian when asked to and missing; says how otherwise. */
function installTools(options: Options): void {
  const missing = [
    ...(hasWrk() ? [] : ['wrk']),
    ...(spawnSync('nginx', ['-v']).error === undefined ? [] : ['nginx-light']),
  ];
  if (missing.length === 0) return;
  if (!options.installTools || process.getuid?.() !== 0) {
    process.stderr.write(
      `not installed: ${missing.join(', ')} (apt-get install ${missing.join(' ')}, or --install-tools as root)\n`,
    );
    return;
  }
  process.stderr.write(`installing ${missing.join(' ')} with apt-get…\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 2, 2], env });
  spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    stdio: ['ignore', 2, 2],
    env,
  });
}

/** The storage service's data: FerretDB on PostgreSQL, or a disk directory. */
interface Backend {
  name: BackendName;
  env: Record<string, string>;
  ferretDb?: FerretDbServer;
  /** What the table calls it. */
  label: string;
  stop(): Promise<void>;
}

async function openBackend(name: BackendName, work: string, options: Options): Promise<Backend> {
  if (name === 'disk') {
    return {
      name,
      env: { STORAGE_BACKEND: 'disk', STORAGE_DIR: await createTempDir('disk-', work) },
      label: 'proxy → storage → disk',
      stop: async () => undefined,
    };
  }
  await ensureFerretDb();
  const ferretDb = await startFerretDb({ backend: options.ferretDbBackend });
  return {
    name,
    env: { STORAGE_BACKEND: 'mongo', MONGODB_URI: ferretDb.uri, MONGODB_DATABASE: 'modproxy_zip_load' },
    ferretDb,
    label: `proxy → storage → FerretDB/${options.ferretDbBackend === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`,
    stop: () => ferretDb.stop(),
  };
}

interface Storage {
  process: AppProcess;
  grpc: string;
  http: string;
}

async function startStorage(backend: Backend): Promise<Storage> {
  const storage = await startAppProcess(bundles.storage, {
    env: {
      PATH: process.env['PATH'] ?? '',
      GRPC_HOST: '127.0.0.1',
      GRPC_PORT: '0',
      HTTP_PORT: '0',
      LOG_LEVEL: 'warn',
      READINESS_INTERVAL_MS: '1000',
      ...backend.env,
    },
    ready: /storage service listening: grpc (\S+):(\d+) http (\d+)/,
  });
  return {
    process: storage,
    grpc: `127.0.0.1:${storage.match[2] ?? ''}`,
    http: `http://127.0.0.1:${storage.match[3] ?? ''}`,
  };
}

/** The zips and the ballast, stored through a storage process of their own (the measured one starts fresh). */
async function seed(backend: Backend, zips: Zip[], ballastMiB: number): Promise<void> {
  const storage = await startStorage(backend);
  const client = new GrpcStorage({ url: storage.grpc });
  try {
    if (ballastMiB > 0) {
      process.stderr.write(`${backend.label}: storing the ${ballastMiB} MiB ballast…\n`);
      const ballast = `${MODULE}-ballast`;
      const pieces = function* () {
        for (let i = 0; i < ballastMiB; i += 1) yield randomBytes(1024 * KiB);
      };
      await client.save({
        module: ballast,
        version: 'v1.0.0',
        info: Buffer.from('{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}'),
        mod: Buffer.from(`module ${ballast}\n`),
        zip: Readable.from(pieces(), { objectMode: false }),
      });
    }
    for (const zip of zips) {
      await client.save({
        module: MODULE,
        version: zip.version,
        info: Buffer.from(JSON.stringify({ Version: zip.version, Time: '2024-01-01T00:00:00Z' })),
        mod: Buffer.from(`module ${MODULE}\n\ngo 1.21\n`),
        zip: Readable.from([zip.data]),
        zipSha256: zip.sha256,
      });
    }
  } finally {
    await client.close();
    await storage.process.stop();
  }
}

/** Every status the storage service's gRPC health reported, and /readyz answers other than 200, while watched. */
class ReadinessWatch {
  readonly statuses: string[] = [];
  readyzFailures = 0;
  readyzChecks = 0;
  private stream: ClientReadableStream<unknown> | undefined;
  private polling = true;
  private poller: Promise<void> | undefined;
  private readonly client: Client;

  constructor(private readonly storage: Storage) {
    const HealthClient = makeGenericClientConstructor(healthService, 'Health');
    this.client = new HealthClient(storage.grpc, credentials.createInsecure());
  }

  /** Resolves once the service has said SERVING; from then on, every status counts. */
  async start(): Promise<void> {
    const watch = healthService['Watch'];
    if (!watch) throw new Error('grpc-health-check has no Watch method');
    await new Promise<void>((resolve, reject) => {
      const stream = this.client.makeServerStreamRequest(
        '/grpc.health.v1.Health/Watch',
        (request: { service: string }) => watch.requestSerialize(request),
        (bytes: Buffer) => watch.responseDeserialize(bytes) as { status?: string | number },
        { service: '' },
      );
      this.stream = stream;
      let serving = false;
      stream.on('data', (message: { status?: string | number }) => {
        const status = String(message.status);
        if (serving) this.statuses.push(status);
        else if (status === 'SERVING' || status === '1') {
          serving = true;
          resolve();
        }
      });
      stream.on('error', (error: Error) => {
        if (!serving) reject(error);
        else if (!/cancelled/i.test(error.message)) this.statuses.push(`stream error: ${error.message}`);
      });
    });
    this.poller = this.pollReadyz();
  }

  get notServingSeen(): boolean {
    return this.statuses.some((status) => status !== 'SERVING' && status !== '1') || this.readyzFailures > 0;
  }

  async stop(): Promise<void> {
    if (!this.polling) return;
    this.polling = false;
    await this.poller;
    this.stream?.cancel();
    this.client.close();
  }

  private async pollReadyz(): Promise<void> {
    while (this.polling) {
      this.readyzChecks += 1;
      try {
        const response = await fetch(`${this.storage.http}/readyz`, { signal: AbortSignal.timeout(5_000) });
        await response.arrayBuffer();
        if (response.status !== 200) this.readyzFailures += 1;
      } catch {
        this.readyzFailures += 1;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** The production shape on one backend: storage service, lathens on Redis, the proxy. */
async function startShape(
  backend: Backend,
  redis: RedisServer,
  options: Options,
  work: string,
): Promise<{ storage: Storage; lathens: AppProcess; proxy: AppProcess; url: string; stop(): Promise<void> }> {
  const started: AppProcess[] = [];
  try {
    const storage = await startStorage(backend);
    started.push(storage.process);
    const base = { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'warn', UPSTREAM: 'off' };
    const storageEnv = { STORAGE_TYPE: 'grpc', STORAGE_GRPC_URL: storage.grpc };
    const lathens = await startAppProcess(bundles.lathens, {
      env: {
        ...base,
        ...storageEnv,
        REDIS_URL: redis.url,
        KEY_PREFIX: `zipload-${randomBytes(4).toString('hex')}:`,
        GRPC_PORT: '0',
        HTTP_PORT: '0',
      },
      ready: /lathens listening: grpc (\S+) http (\S+)/,
    });
    started.push(lathens);
    const proxy = await startAppProcess(bundles.proxy, {
      env: {
        ...base,
        ...storageEnv,
        HOST: '127.0.0.1',
        PORT: '0',
        WORKERS: '1',
        LATHENS_GRPC_URL: lathens.match[1] ?? '',
        ...(options.proxyCache
          ? { CACHE_DIR: await createTempDir('proxy-cache-', work) }
          : { CACHE_MEMORY_MAX_BYTES: '0', CACHE_MAX_BYTES: '0' }),
      },
      ready: /export GOPROXY=(\S+)/,
    });
    started.push(proxy);
    // The printed URL may say localhost; the proxy listens on 127.0.0.1 only.
    const url = `http://127.0.0.1:${new URL(proxy.match[1] ?? '').port}`;
    return {
      storage,
      lathens,
      proxy,
      url,
      stop: async () => {
        for (const app of [...started].reverse()) await app.stop();
      },
    };
  } catch (error) {
    for (const app of started.reverse()) await app.stop();
    throw error;
  }
}

/** Every zip once, checked byte for byte: the load must not have changed what is served. */
async function digestsOk(url: string, zips: Zip[]): Promise<string> {
  let ok = 0;
  for (const zip of zips) {
    const response = await fetch(`${url}${zipPath(zip)}`);
    const body = Buffer.from(await response.arrayBuffer());
    if (response.status === 200 && createHash('sha256').update(body).digest('hex') === zip.sha256) ok += 1;
  }
  return `${ok}/${zips.length}`;
}

function drive(options: Options, target: string, url: string, zips: Zip[]): Promise<LoadResult> {
  const paths = zips.map(zipPath);
  const run = options.loader === 'wrk' ? loadWithWrk : load;
  process.stderr.write(`${target}: ${options.connections} connections × ${options.durationSeconds} s…\n`);
  return run(
    target,
    `${zips.length} × ${options.zipKiB} KiB`,
    `${url}${paths[0] ?? '/'}`,
    options.connections,
    options.durationSeconds,
    {
      ...(paths.length > 1 ? { paths } : {}),
    },
  );
}

function loadColumns(result: LoadResult): Row {
  return {
    target: result.target,
    zips: result.endpoint,
    conns: result.connections,
    'req/s': Math.round(result.requestsPerSecond),
    'MiB/s': result.mibPerSecond,
    'p50 ms': result.p50Ms,
    'p99 ms': result.p99Ms,
    'non-2xx': result.non2xx,
    errors: result.errors,
  };
}

async function measureShape(
  backend: Backend,
  redis: RedisServer,
  zips: Zip[],
  options: Options,
  work: string,
): Promise<Row> {
  const shape = await startShape(backend, redis, options, work);
  const watch = new ReadinessWatch(shape.storage);
  try {
    await watch.start();
    // Warm: each zip once through the proxy before the clock starts.
    const warm = await digestsOk(shape.url, zips);
    if (warm !== `${zips.length}/${zips.length}`)
      throw new Error(`${backend.name}: warm-up got ${warm} zips right`);
    const result = await drive(options, backend.label, shape.url, zips);
    await watch.stop();
    return {
      ...loadColumns(result),
      'NOT_SERVING seen': watch.notServingSeen ? 'yes' : 'no',
      '/readyz not 200': `${watch.readyzFailures}/${watch.readyzChecks}`,
      'digests ok': await digestsOk(shape.url, zips),
      'proxy peak RSS MiB': peakRssMiB(shape.proxy.child.pid ?? 0),
      'storage peak RSS MiB': peakRssMiB(shape.storage.process.child.pid ?? 0),
      'FerretDB peak RSS MiB': backend.ferretDb ? peakRssMiB(backend.ferretDb.pid) : '–',
    };
  } finally {
    await watch.stop().catch(() => undefined);
    await shape.stop();
  }
}

/** nginx (Debian's nginx-light) over the same zips laid out as a GOPROXY tree: the static ceiling. */
async function measureNginx(zips: Zip[], options: Options): Promise<Row | undefined> {
  if (spawnSync('nginx', ['-v']).error !== undefined) return undefined;
  const prefix = await mkdtemp(join(tmpdir(), 'modproxy-nginx-'));
  try {
    return await serveWithNginx(prefix, zips, options);
  } finally {
    await removeDir(prefix);
  }
}

async function serveWithNginx(prefix: string, zips: Zip[], options: Options): Promise<Row> {
  const tree = join(prefix, 'goproxy');
  const versions = join(tree, MODULE, '@v');
  await mkdir(versions, { recursive: true });
  for (const zip of zips) await writeFile(join(tree, zipPath(zip)), zip.data, { mode: 0o644 });
  // nginx's workers run as an unprivileged user when started as root: they must reach the tree.
  for (let dir = versions; dir.startsWith(prefix); dir = dirname(dir)) await chmod(dir, 0o755);
  const port = await getFreePort();
  await writeFile(
    join(prefix, 'nginx.conf'),
    [
      'worker_processes 2;',
      `pid ${join(prefix, 'nginx.pid')};`,
      `error_log ${join(prefix, 'error.log')} warn;`,
      'events { worker_connections 1024; }',
      'http {',
      '  access_log off;',
      '  sendfile on;',
      '  tcp_nopush on;',
      '  default_type application/zip;',
      `  client_body_temp_path ${join(prefix, 'body')};`,
      `  proxy_temp_path ${join(prefix, 'proxy')};`,
      `  fastcgi_temp_path ${join(prefix, 'fastcgi')};`,
      `  uwsgi_temp_path ${join(prefix, 'uwsgi')};`,
      `  scgi_temp_path ${join(prefix, 'scgi')};`,
      `  server { listen 127.0.0.1:${port}; root ${tree}; }`,
      '}',
      '',
    ].join('\n'),
  );
  const nginx: ChildProcess = spawn(
    'nginx',
    ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', join(prefix, 'nginx.conf'), '-g', 'daemon off;'],
    {
      stdio: ['ignore', 'ignore', 'ignore'],
    },
  );
  try {
    const url = `http://127.0.0.1:${port}`;
    for (let attempt = 0; ; attempt += 1) {
      const answered = await fetch(`${url}${zipPath(zips[0] as Zip)}`).then(
        async (response) => (await response.arrayBuffer(), response.status === 200),
        () => false,
      );
      if (answered) break;
      if (attempt > 100 || nginx.exitCode !== null) throw new Error('nginx did not start');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const result = await drive(options, 'nginx (static files)', url, zips);
    return {
      ...loadColumns(result),
      'NOT_SERVING seen': '–',
      '/readyz not 200': '–',
      'digests ok': await digestsOk(url, zips),
      'proxy peak RSS MiB': '–',
      'storage peak RSS MiB': '–',
      'FerretDB peak RSS MiB': '–',
    };
  } finally {
    // SIGQUIT: nginx's graceful stop, of the master this bench started (its pid).
    const exited = new Promise((resolve) => nginx.once('exit', resolve));
    if (nginx.exitCode === null) nginx.kill('SIGQUIT');
    await exited;
  }
}

async function main(): Promise<void> {
  const options = readOptions();
  installTools(options);
  const loader = options.loader === 'wrk' && !hasWrk() ? 'autocannon' : options.loader;
  options.loader = loader;
  for (const app of ['storage', 'proxy', 'lathens'] as const)
    bundles[app] = bundleBenchApp(root, 'zip-load-bench', app);
  const zips = makeZips(Math.max(...options.zipCounts), options.zipKiB);
  const rows: Row[] = [];
  const work = await createTempDir('modproxy-zip-load-');
  const redis = await startRedisServer();
  try {
    for (const name of options.backends) {
      const backend = await openBackend(name, work, options);
      try {
        await seed(backend, zips, options.ballastMiB);
        for (const count of options.zipCounts)
          rows.push(await measureShape(backend, redis, zips.slice(0, count), options, work));
      } finally {
        await backend.stop();
      }
    }
    for (const count of options.zipCounts) {
      const row = await measureNginx(zips.slice(0, count), options);
      if (row) rows.push(row);
    }
  } finally {
    await redis.stop();
    await removeDir(work);
  }
  process.stdout.write(
    `\nWarm ${options.zipKiB} KiB zips (and a ${options.ballastMiB} MiB zip stored, never asked for), ${options.connections} connections for ${options.durationSeconds} s each (${loader}); the proxy's content cache ${options.proxyCache ? 'on' : 'off'};` +
      ' production shape: proxy (STORAGE_TYPE=grpc) → storage service, lathens on Redis; FerretDB v1 is not a real MongoDB\n\n',
  );
  printTable(rows);
  const failed = rows.some(
    (row) =>
      row['non-2xx'] !== 0 ||
      row['errors'] !== 0 ||
      row['NOT_SERVING seen'] === 'yes' ||
      !/^(\d+)\/\1$/.test(String(row['digests ok'])),
  );
  if (failed) {
    process.stderr.write(
      'some answers were not 2xx, a connection failed, the storage service was not serving, or a zip changed\n',
    );
    process.exitCode = 1;
  }
}

await main();
