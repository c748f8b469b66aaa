/**
 * The storage service over gRPC on loopback (the built apps/storage bundle): Save and GetZip
 * throughput of one large zip, then the peak RSS of the storage server and of the proxy
 * (STORAGE_TYPE=grpc) while many clients download that zip through the proxy at once, for the
 * large zip and a 10 MiB one, so that one can see whether zip memory stays flat or grows with
 * the zip. Each RSS row gets an empty backend, seeded by a storage process of its own, and then
 * a fresh storage process and proxy, so their peak RSS covers the downloads only.
 *
 *   npm run bench:storage -- [--size-mib 100] [--repeat 3] [--clients 16] [--backends disk,mongo]
 *                            [--ferretdb-backend postgresql|sqlite]
 *
 * The mongo backend runs against FerretDB v1 (MongoDB wire protocol) on PostgreSQL, or on SQLite
 * with `--ferretdb-backend sqlite`; FerretDB is built by scripts/ensure-ferretdb.sh on first use.
 * Its figures say little about a real MongoDB. Everything (bench client, proxy, storage server,
 * FerretDB, PostgreSQL) shares the same cores.
 */
import { createHash, randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { GrpcStorage } from '@modproxy/storage-grpc';
import { ensureFerretDb, type FerretDbBackend, startFerretDb } from '@modproxy/storage-mongo/testing';
import { type AppProcess, createTempDir, removeDir, startAppProcess } from '@modproxy/testing';
import { bundleBenchApp, parseArgs, peakRssMiB, printTable, rssMiB } from './bench-support';

const root = join(dirname(process.argv[1] ?? '.'), '..', '..');
const MiB = 1024 * 1024;
/** The zip every RSS row is compared with: small enough that its RSS is mostly the runtime's. */
const SMALL_ZIP_MIB = 10;
const VERSION = 'v1.0.0';
/** The app bundles this run starts, built at its start (see {@link bundleBenchApp}). */
const bundles = { storage: '', proxy: '' };

type BackendName = 'disk' | 'mongo';

interface BenchOptions {
  sizeMiB: number;
  repeat: number;
  clients: number;
  backends: BackendName[];
  ferretDbBackend: FerretDbBackend;
}

interface Payload {
  module: string;
  data: Buffer;
  sha256: string;
}

interface Backend {
  name: BackendName;
  /** What the storage process needs to reach this backend's data. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

type Row = Record<string, string | number>;

function readOptions(): BenchOptions {
  const args = parseArgs(process.argv.slice(2));
  const positive = (name: string, fallback: number): number => {
    const value = Number(args.get(name) ?? fallback);
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`);
    return value;
  };
  const backends = (args.get('backends') ?? 'disk,mongo').split(',').filter(Boolean);
  for (const backend of backends) {
    if (backend !== 'disk' && backend !== 'mongo') throw new Error(`--backends: unknown backend ${backend}`);
  }
  const ferretDbBackend = args.get('ferretdb-backend') ?? 'postgresql';
  if (ferretDbBackend !== 'postgresql' && ferretDbBackend !== 'sqlite')
    throw new Error(`--ferretdb-backend: postgresql or sqlite, not ${ferretDbBackend}`);
  return {
    ferretDbBackend,
    sizeMiB: positive('size-mib', 100),
    repeat: positive('repeat', 3),
    clients: positive('clients', 16),
    backends: backends as BackendName[],
  };
}

function payload(sizeMiB: number): Payload {
  // Random bytes: incompressible, so no layer can make the zip smaller than it is.
  const data = randomBytes(sizeMiB * MiB);
  return {
    module: `bench.test/storage/zip${sizeMiB}mib`,
    data,
    sha256: createHash('sha256').update(data).digest('hex'),
  };
}

/** The zip as a caller would hand it over: a byte stream in 1 MiB pieces, not one buffer. */
function zipStream(data: Buffer): Readable {
  function* pieces() {
    for (let offset = 0; offset < data.length; offset += MiB) yield data.subarray(offset, offset + MiB);
  }
  return Readable.from(pieces(), { objectMode: false });
}

/**
 * An empty backend. Each phase gets its own: FerretDB serves GridFS reads by scanning, so its
 * reads slow down as the chunks collection grows, and zips of earlier phases would skew later ones.
 */
async function openBackend(name: BackendName, work: string, options: BenchOptions): Promise<Backend> {
  if (name === 'disk') {
    return {
      name,
      env: { STORAGE_BACKEND: 'disk', STORAGE_DIR: await createTempDir('disk-', work) },
      stop: async () => undefined,
    };
  }
  process.stderr.write('FerretDB: building it if missing (a few minutes the first time)…\n');
  await ensureFerretDb();
  // On PostgreSQL: a server of its own for this phase, stopped with FerretDB.
  const ferret = await startFerretDb({ backend: options.ferretDbBackend });
  return {
    name,
    env: { STORAGE_BACKEND: 'mongo', MONGODB_URI: ferret.uri, MONGODB_DATABASE: 'modproxy_bench' },
    stop: () => ferret.stop(),
  };
}

/** A fresh storage process, so that its VmHWM covers only what happens from now on. */
async function startStorage(backend: Backend): Promise<{ process: AppProcess; url: string }> {
  const storage = await startAppProcess(bundles.storage, {
    env: {
      PATH: process.env['PATH'] ?? '',
      GRPC_HOST: '127.0.0.1',
      GRPC_PORT: '0',
      HTTP_PORT: '0',
      LOG_LEVEL: 'warn',
      ...backend.env,
    },
    ready: /storage service listening: grpc (\S+):(\d+) http/,
  });
  return { process: storage, url: `127.0.0.1:${storage.match[2] ?? ''}` };
}

async function startProxy(storageUrl: string): Promise<{ process: AppProcess; url: string }> {
  const proxy = await startAppProcess(bundles.proxy, {
    env: {
      PATH: process.env['PATH'] ?? '',
      HOST: '127.0.0.1',
      PORT: '0',
      STORAGE_TYPE: 'grpc',
      STORAGE_GRPC_URL: storageUrl,
      UPSTREAM: 'off',
      WORKERS: '1',
      // The content cache off: its hits would not reach the storage service this bench measures
      // (and a disk tier kept across runs would serve zips of an earlier run's random bytes).
      CACHE_MEMORY_MAX_BYTES: '0',
      CACHE_MAX_BYTES: '0',
      LOG_LEVEL: 'warn',
    },
    ready: /export GOPROXY=(\S+)/,
  });
  // The printed URL may say localhost; the proxy listens on 127.0.0.1 only.
  const port = new URL(proxy.match[1] ?? '').port;
  return { process: proxy, url: `http://127.0.0.1:${port}` };
}

async function withBackend<T>(
  name: BackendName,
  work: string,
  options: BenchOptions,
  body: (backend: Backend) => Promise<T>,
): Promise<T> {
  const backend = await openBackend(name, work, options);
  try {
    return await body(backend);
  } finally {
    await backend.stop();
  }
}

function saveZip(client: GrpcStorage, zip: Payload, version: string): Promise<void> {
  return client.save({
    module: zip.module,
    version,
    info: Buffer.from(JSON.stringify({ Version: version, Time: '2024-01-01T00:00:00Z' })),
    mod: Buffer.from(`module ${zip.module}\n\ngo 1.21\n`),
    zip: zipStream(zip.data),
    zipSha256: zip.sha256,
  });
}

/** Stores `zip` as v1.0.0 through a storage process of its own, so the measured one has not seen a Save. */
async function seed(backend: Backend, zip: Payload): Promise<void> {
  const storage = await startStorage(backend);
  const client = new GrpcStorage({ url: storage.url });
  try {
    await saveZip(client, zip, VERSION);
  } finally {
    await client.close();
    await storage.process.stop();
  }
}

async function sha256Of(chunks: AsyncIterable<Uint8Array>): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of chunks) {
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** What a process printed last, to explain a failure. */
function tail(app: AppProcess): string {
  return `${app.stdout().slice(-3000)}${app.stderr().slice(-3000)}`;
}

function spread(values: number[]): { min: number; median: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
  return { min: sorted[0] ?? 0, median, max: sorted.at(-1) ?? 0 };
}

async function timed(work: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await work();
  return (performance.now() - start) / 1000;
}

/**
 * Saves `repeat` distinct versions of the large zip, then reads v1.0.0 back `repeat` times (every
 * read checked against the saved digest).
 */
async function measureThroughput(backend: Backend, large: Payload, options: BenchOptions): Promise<Row[]> {
  const storage = await startStorage(backend);
  const client = new GrpcStorage({ url: storage.url });
  try {
    const saves: number[] = [];
    for (let run = 0; run < options.repeat; run += 1) {
      process.stderr.write(`${backend.name}: Save ${options.sizeMiB} MiB #${run + 1}…\n`);
      const seconds = await timed(() => saveZip(client, large, `v1.0.${run}`));
      saves.push(options.sizeMiB / seconds);
    }
    const reads: number[] = [];
    for (let run = 0; run < options.repeat; run += 1) {
      process.stderr.write(`${backend.name}: GetZip ${options.sizeMiB} MiB #${run + 1}…\n`);
      const seconds = await timed(async () => {
        const zip = await client.zip(large.module, VERSION);
        const got = await sha256Of(zip.stream as AsyncIterable<Buffer>);
        if (zip.size !== large.data.length || got.bytes !== large.data.length || got.sha256 !== large.sha256)
          throw new Error(`${backend.name}: GetZip returned other bytes than were saved`);
      });
      reads.push(options.sizeMiB / seconds);
    }
    const serverPeak = peakRssMiB(storage.process.child.pid ?? 0);
    return [
      { op: 'Save', values: saves },
      { op: 'GetZip', values: reads },
    ].map(({ op, values }) => {
      const { min, median, max } = spread(values);
      return {
        backend: backend.name,
        op,
        'zip MiB': options.sizeMiB,
        runs: values.length,
        'min MiB/s': min,
        'median MiB/s': median,
        'max MiB/s': max,
        'server peak RSS MiB': serverPeak,
      };
    });
  } finally {
    await client.close();
    await storage.process.stop();
  }
}

/**
 * `clients` concurrent GETs of one zip through the proxy, with a fresh proxy and storage server
 * (their VmHWM then covers these downloads and their own start only).
 */
async function measureConcurrentDownloads(
  backend: Backend,
  zip: Payload,
  options: BenchOptions,
): Promise<Row> {
  const storage = await startStorage(backend);
  const started: AppProcess[] = [storage.process];
  try {
    const proxy = await startProxy(storage.url);
    started.push(proxy.process);
    const storagePid = storage.process.child.pid ?? 0;
    const proxyPid = proxy.process.child.pid ?? 0;
    const storageBefore = rssMiB(storagePid);
    const proxyBefore = rssMiB(proxyPid);
    const url = `${proxy.url}/${zip.module}/@v/${VERSION}.zip`;
    process.stderr.write(
      `${backend.name}: ${options.clients} clients × ${zip.data.length / MiB} MiB via the proxy…\n`,
    );
    const failures: string[] = [];
    const download = async (): Promise<void> => {
      const response = await fetch(url);
      if (response.status !== 200 || !response.body) {
        failures.push(`HTTP ${response.status}: ${(await response.text()).slice(0, 200)}`);
        return;
      }
      const got = await sha256Of(response.body);
      if (got.sha256 !== zip.sha256 || got.bytes !== zip.data.length)
        failures.push(`other bytes than were saved (${got.bytes} bytes, sha256 ${got.sha256})`);
    };
    const seconds = await timed(async () => {
      await Promise.all(
        Array.from({ length: options.clients }, () =>
          download().catch((error: unknown) => {
            const cause =
              error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
            failures.push(`${String(error)}${cause}`);
          }),
        ),
      );
    });
    if (failures.length > 0) {
      process.stderr.write(
        `${backend.name} ${zip.data.length / MiB} MiB: ${failures.length} download(s) failed, first: ${failures[0] ?? ''}\n` +
          `proxy output:\n${tail(proxy.process)}\nstorage output:\n${tail(storage.process)}\n`,
      );
    }
    return {
      backend: backend.name,
      'zip MiB': zip.data.length / MiB,
      clients: options.clients,
      'digests ok': `${options.clients - failures.length}/${options.clients}`,
      'wall s': seconds,
      'total MiB/s': (options.clients * zip.data.length) / MiB / seconds,
      'storage RSS before': storageBefore,
      'storage peak RSS': peakRssMiB(storagePid),
      'proxy RSS before': proxyBefore,
      'proxy peak RSS': peakRssMiB(proxyPid),
    };
  } finally {
    for (const running of started.reverse()) await running.stop();
  }
}

async function main(): Promise<void> {
  const options = readOptions();
  bundles.storage = bundleBenchApp(root, 'storage-bench', 'storage');
  bundles.proxy = bundleBenchApp(root, 'storage-bench', 'proxy');
  const large = payload(options.sizeMiB);
  const rssPayloads = options.sizeMiB === SMALL_ZIP_MIB ? [large] : [payload(SMALL_ZIP_MIB), large];
  const throughputRows: Row[] = [];
  const rssRows: Row[] = [];
  const work = await createTempDir('modproxy-storage-bench-');
  try {
    for (const name of options.backends) {
      throughputRows.push(
        ...(await withBackend(name, work, options, (backend) => measureThroughput(backend, large, options))),
      );
      for (const zip of rssPayloads) {
        rssRows.push(
          await withBackend(name, work, options, async (backend) => {
            await seed(backend, zip);
            return measureConcurrentDownloads(backend, zip, options);
          }),
        );
      }
    }
  } finally {
    await removeDir(work);
    const mongo = options.backends.includes('mongo')
      ? `; mongo = MongoStorage (GridFS) on FerretDB v1 on ${options.ferretDbBackend === 'sqlite' ? 'SQLite' : 'PostgreSQL'}, not a real MongoDB`
      : '';
    process.stdout.write(
      `\nStorage service over gRPC on loopback: Save and GetZip of one ${options.sizeMiB} MiB zip` +
        ` (client hashes every byte read)${mongo}\n\n`,
    );
    printTable(throughputRows);
    process.stdout.write(
      `\n${options.clients} clients downloading one zip through the proxy at once` +
        ` (proxy STORAGE_TYPE=grpc → storage service; fresh backend and processes per row; RSS in MiB)\n\n`,
    );
    printTable(rssRows);
  }
  if (rssRows.some((row) => row['digests ok'] !== `${options.clients}/${options.clients}`)) {
    process.stderr.write('some downloads failed or returned other bytes than were saved\n');
    process.exitCode = 1;
  }
}

await main();
