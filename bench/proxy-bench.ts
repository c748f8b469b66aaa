/**
 * Warm GOPROXY requests through ours beside the ceilings, in one run over the same files:
 * nginx (Debian's nginx-light, sendfile) serving them as a static GOPROXY tree, a bare
 * node:http server answering them from memory (the Node ceiling, as many processes as ours),
 * the proxy (built bundle with its tracing entry, disk storage) with each `--workers` count, and
 * any proxy given with `--compare`. Every figure is also given as a share of nginx's.
 *
 *   npm run bench:proxy -- [--duration 6] [--connections 64] [--workers 1,2] [--compare URL]
 *                          [--static-port 0] [--rss-clients 16] [--rss-mib 200] [--no-rss]
 *                          [--only info,mod,zip,bigzip,list,latest] [--cpu-prof DIR]
 *                          [--node-options '--max-semi-space-size=4'] [--shape production]
 *
 * wrk is the load generator (`apt-get install wrk`; installed here when missing and run as
 * root). `--compare` proxies should use nginx (`--static-port`) as their upstream; each is
 * warmed with one request per file first. The RSS cell pulls a `--rss-mib` zip with
 * `--rss-clients` connections and reports each process's peak resident set during it.
 * `--cpu-prof DIR` runs the proxy under `node --cpu-prof` (profiles written at shutdown);
 * `--node-options` is the proxy's NODE_OPTIONS (V8 flags to try). `--shape production` adds the
 * proxy over the storage service on FerretDB/PostgreSQL with its content cache (warm).
 */
import { spawnSync } from 'node:child_process';
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { DiskStorage } from '@modproxy/storage';
import { GrpcStorage } from '@modproxy/storage-grpc';
import { ensureFerretDb, startFerretDb } from '@modproxy/storage-mongo/testing';
import { type AppProcess, startAppProcess } from '@modproxy/testing';
import { bundleBenchApp, loadWithWrk, type LoadResult, parseArgs, printTable } from './bench-support';
import { childPids, ensureDebianPackage, ensureNginx, startNginx } from './nginx-server';

const root = join(dirname(process.argv[1] ?? '.'), '..', '..');
const args = parseArgs(process.argv.slice(2));

if (args.has('help')) {
  process.stdout.write(
    'usage: npm run bench:proxy -- [--duration 6] [--connections 64] [--workers 1,2] [--compare URL] [--static-port 0] [--rss-clients 16] [--rss-mib 200] [--no-rss] [--only info,mod,zip,bigzip,list,latest] [--cpu-prof DIR] [--node-options FLAGS] [--shape production]\n',
  );
} else if (args.has('serve-memory')) {
  serveFromMemory(args.get('serve-memory') ?? '.', Number(args.get('processes') ?? 1));
} else {
  await main();
}

/** The Node ceiling: every file of the tree in memory, answered by exact path, nothing else. */
function serveFromMemory(dir: string, processes: number): void {
  if (processes > 1 && cluster.isPrimary) {
    for (let i = 0; i < processes; i++) cluster.fork();
    let listening = 0;
    cluster.on('listening', (_worker, address) => {
      if (++listening === processes) process.stdout.write(`memory listening on ${address.port}\n`);
    });
    process.on('SIGTERM', () => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
      process.exit(0);
    });
    return;
  }
  const files = new Map<string, Buffer>();
  const walk = (current: string) => {
    for (const entry of spawnSync('find', [current, '-type', 'f'], { encoding: 'utf8' }).stdout.split('\n')) {
      if (entry === '' || entry.includes('huge')) continue;
      files.set(`/${relative(dir, entry)}`, readFileSync(entry));
    }
  };
  walk(dir);
  const server = createServer((req, res) => {
    const body = files.get(req.url ?? '');
    if (!body) return void res.writeHead(404).end('not found\n');
    res.writeHead(200, { 'Content-Length': body.length });
    res.end(body);
  });
  server.listen(Number(process.env['BENCH_PORT'] ?? 0), '127.0.0.1', () => {
    const address = server.address();
    if (cluster.isPrimary)
      process.stdout.write(
        `memory listening on ${typeof address === 'object' && address ? address.port : 0}\n`,
      );
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

interface Cell {
  key: string;
  endpoint: string;
  path: string;
  /** Compared by MB/s rather than req/s. */
  throughput?: boolean;
}

/** A realistic `.info`: what proxy.golang.org serves for a tagged version (187 bytes). */
function infoOf(version: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      Version: version,
      Time: '2024-01-01T00:00:00Z',
      Origin: {
        VCS: 'git',
        URL: 'https://github.com/bench/x',
        Hash: '0123456789abcdef0123456789abcdef01234567',
      },
    }).slice(0, 187),
  );
}

/** One version the bench stores, as every storage gets it. */
type BenchVersion = { module: string; version: string; info: Buffer; mod: Buffer; zip: Buffer };

async function prepare(
  work: string,
  rssMiB: number,
  withRss: boolean,
): Promise<{ cells: Cell[]; saved: BenchVersion[] }> {
  const storage = await DiskStorage.open({ root: join(work, 'storage') });
  const saved: BenchVersion[] = [];
  const versions: Array<[string, number]> = [
    ['bench.test/small', 32 * 1024],
    ['bench.test/large', 36 * 1024 * 1024],
  ];
  if (withRss) versions.push(['bench.test/huge', rssMiB * 1024 * 1024]);
  for (const [module, size] of versions) {
    const version = 'v1.0.0';
    const info = infoOf(version);
    const mod = Buffer.from(
      `module ${module}\n\ngo 1.21\n\nrequire (\n\tgolang.org/x/mod v0.17.0\n\tgolang.org/x/sync v0.7.0\n)\n`,
    );
    const zip = randomBytes(size);
    await storage.save({ module, version, info, mod, zip: Readable.from([zip]) });
    saved.push({ module, version, info, mod, zip });
    const dir = join(work, 'static', module, '@v');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `${version}.info`), info);
    await writeFile(join(dir, `${version}.mod`), mod);
    await writeFile(join(dir, `${version}.zip`), zip);
  }
  await storage.close();
  const small = '/bench.test/small';
  const cells: Cell[] = [
    { key: 'info', endpoint: '.info', path: `${small}/@v/v1.0.0.info` },
    { key: 'mod', endpoint: '.mod', path: `${small}/@v/v1.0.0.mod` },
    { key: 'zip', endpoint: '.zip 32 KiB', path: `${small}/@v/v1.0.0.zip` },
    { key: 'bigzip', endpoint: '.zip 36 MiB', path: '/bench.test/large/@v/v1.0.0.zip', throughput: true },
    { key: 'list', endpoint: '/@v/list', path: `${small}/@v/list` },
    { key: 'latest', endpoint: '/@latest', path: `${small}/@latest` },
  ];
  return { cells, saved };
}

interface Target {
  name: string;
  url: string;
  /** The processes that serve (a cluster's primary and workers, nginx's master and workers). */
  pids: () => number[];
}

function processTree(pid: number | undefined): () => number[] {
  return () => (pid ? [pid, ...childPids(pid)] : []);
}

/** Peak RSS (VmHWM) since the last reset, per process, in MiB. */
function peaks(pids: number[]): number[] {
  return pids.map((pid) => {
    try {
      const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return match ? Number(match[1]) / 1024 : Number.NaN;
    } catch {
      return Number.NaN;
    }
  });
}

/** Starts each process's peak RSS afresh (Linux: `5` to /proc/<pid>/clear_refs). */
function resetPeaks(pids: number[]): void {
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      // Not ours to reset (another user's process): its peak is since it started.
    }
  }
}

async function main(): Promise<void> {
  const duration = Number(args.get('duration') ?? 6);
  const connections = Number(args.get('connections') ?? 64);
  const workerCounts = (args.get('workers') ?? '1,2').split(',').map(Number);
  const rssClients = Number(args.get('rss-clients') ?? 16);
  const rssMiB = Number(args.get('rss-mib') ?? 200);
  const withRss = !args.has('no-rss');
  const only = args.get('only')?.split(',');
  const cpuProf = args.get('cpu-prof');
  const shape = args.get('shape') ?? 'embedded';
  if (!ensureDebianPackage('wrk', 'wrk') || !ensureNginx()) process.exit(2);

  const work = join(tmpdir(), `modproxy-proxy-bench-${process.pid}`);
  await rm(work, { recursive: true, force: true });
  const prepared = await prepare(work, rssMiB, withRss);
  const cells = prepared.cells.filter((cell) => !only || only.includes(cell.key));
  const main = bundleBenchApp(root, 'proxy', 'proxy');
  const started: AppProcess[] = [];
  const stops: Array<() => Promise<unknown>> = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
  };
  const interrupt = () => void stopAll().then(() => process.exit(130));
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  const results: Array<LoadResult & { processes: number }> = [];
  const rssRows: Array<Record<string, string | number>> = [];
  try {
    const staticPort = Number(args.get('static-port') ?? 0) || (await freePort());
    const nginx = await startNginx(join(work, 'static'), work, staticPort);
    stops.push(() => nginx.stop());
    const targets: Target[] = [{ name: 'nginx', url: nginx.url, pids: () => nginx.workerPids() }];
    const env = { PATH: process.env['PATH'] ?? '', HOME: work };
    const ours: Target[] = [];
    for (const workers of workerCounts) {
      const proxy = await startAppProcess(main, {
        env: {
          ...env,
          PORT: '0',
          STORAGE_DIR: join(work, 'storage'),
          UPSTREAM: nginx.url,
          LOG_LEVEL: 'warn',
          WORKERS: String(workers),
          GO_WORK_DIR: work,
          ...(args.get('node-options') ? { NODE_OPTIONS: args.get('node-options') ?? '' } : {}),
        },
        ...(cpuProf
          ? {
              nodeArgs: [
                '--import',
                join(dirname(main), 'instrument.js'),
                '--cpu-prof',
                `--cpu-prof-dir=${join(cpuProf, `workers-${workers}`)}`,
              ],
            }
          : {}),
        ready: /export GOPROXY=(\S+)/,
      });
      started.push(proxy);
      stops.push(() => proxy.stop(30_000));
      ours.push({
        name: `ours, WORKERS=${workers}`,
        url: proxy.match[1] ?? '',
        pids: processTree(proxy.child.pid),
      });
    }
    if (shape === 'production') {
      ours.push(await startProductionShape(work, prepared.saved, nginx.url, stops));
    }
    // list and latest as ours answers them, as static files: the same bytes for every server.
    const first = ours[0];
    if (first) {
      for (const suffix of ['@v/list', '@latest']) {
        const body = Buffer.from(
          await (await fetch(`${first.url}/bench.test/small/${suffix}`)).arrayBuffer(),
        );
        await writeFile(join(work, 'static', 'bench.test', 'small', suffix), body);
      }
    }
    const maxWorkers = Math.max(...workerCounts);
    const memory = await startAppProcess(process.argv[1] ?? '', {
      args: ['--serve-memory', join(work, 'static'), '--processes', String(maxWorkers)],
      env,
      nodeArgs: ['--enable-source-maps'],
      ready: /memory listening on (\d+)/,
    });
    stops.push(() => memory.stop());
    const processes = `${maxWorkers} process${maxWorkers > 1 ? 'es' : ''}`;
    targets.push({
      name: `node:http from memory (${processes})`,
      url: `http://127.0.0.1:${memory.match[1] ?? ''}`,
      pids: processTree(memory.child.pid),
    });
    // The same server under the proxy's tracing entry: what OpenTelemetry's HTTP instrumentation
    // alone costs a request, the ceiling of any instrumented Node server.
    const traced = await startAppProcess(process.argv[1] ?? '', {
      args: ['--serve-memory', join(work, 'static'), '--processes', String(maxWorkers)],
      env: { ...env, OTEL_SERVICE_NAME: 'bench-memory' },
      nodeArgs: ['--import', join(dirname(main), 'instrument.js'), '--enable-source-maps'],
      ready: /memory listening on (\d+)/,
    });
    stops.push(() => traced.stop());
    targets.push({
      name: `node:http from memory + tracing entry (${processes})`,
      url: `http://127.0.0.1:${traced.match[1] ?? ''}`,
      pids: processTree(traced.child.pid),
    });
    targets.push(...ours);
    const compare = args.get('compare');
    if (compare) {
      for (const cell of cells)
        await fetch(`${compare}${cell.path}`).then((response) => response.arrayBuffer());
      targets.push({ name: `compare ${compare}`, url: compare, pids: () => [] });
    }
    // Everything warm before measuring (ours: the list cache, the first reads).
    for (const target of targets)
      for (const cell of cells)
        await fetch(`${target.url}${cell.path}`).then((response) => response.arrayBuffer());

    // First, while every process is as it started: what 16 downloads of a large zip cost.
    if (withRss) {
      for (const target of targets.filter((t) => t.name !== 'compare' && !t.name.startsWith('compare'))) {
        if (target.name.startsWith('node:http')) continue;
        const pids = target.pids();
        resetPeaks(pids);
        process.stderr.write(`${target.name} RSS: ${rssClients} clients pulling ${rssMiB} MiB…\n`);
        const load = await loadWithWrk(
          target.name,
          `.zip ${rssMiB} MiB`,
          `${target.url}/bench.test/huge/@v/v1.0.0.zip`,
          rssClients,
          Math.max(duration, 10),
        );
        const peak = peaks(pids);
        rssRows.push({
          server: target.name,
          clients: rssClients,
          'MiB/s': load.mibPerSecond,
          'zips done': Math.round(load.requestsPerSecond * Math.max(duration, 10)),
          'peak RSS MiB per process': peak.map((mib) => mib.toFixed(0)).join(' / '),
          'max MiB': Math.max(...peak),
        });
      }
    }
    for (const cell of cells) {
      for (const target of targets) {
        process.stderr.write(`${target.name} ${cell.endpoint} c=${connections}…\n`);
        // A 36 MiB zip takes a connection seconds: give the cell time for many of them.
        const seconds = cell.throughput ? Math.max(duration, 12) : duration;
        const result = await loadWithWrk(
          target.name,
          cell.endpoint,
          `${target.url}${cell.path}`,
          connections,
          seconds,
        );
        results.push({ ...result, processes: target.pids().length });
      }
    }
  } finally {
    await stopAll();
    await rm(work, { recursive: true, force: true });
  }
  report(results, cells, rssRows, duration, connections);
}

function report(
  results: Array<LoadResult & { processes: number }>,
  cells: Cell[],
  rssRows: Array<Record<string, string | number>>,
  duration: number,
  connections: number,
): void {
  process.stdout.write(`\nWarm GOPROXY requests, wrk -c${connections}, ${duration} s per cell, loopback\n\n`);
  const rows: Array<Record<string, string | number>> = [];
  for (const cell of cells) {
    const nginx = results.find((r) => r.endpoint === cell.endpoint && r.target === 'nginx');
    for (const result of results.filter((r) => r.endpoint === cell.endpoint)) {
      const ratio = (mine: number, theirs: number | undefined) =>
        theirs ? `${((100 * mine) / theirs).toFixed(1)}%` : '';
      rows.push({
        endpoint: cell.endpoint,
        target: result.target,
        'req/s': Math.round(result.requestsPerSecond),
        'MB/s': Number((result.mibPerSecond * 1.048576).toFixed(1)),
        'p50 ms': result.p50Ms,
        'p99 ms': result.p99Ms,
        'of nginx': cell.throughput
          ? ratio(result.mibPerSecond, nginx?.mibPerSecond)
          : ratio(result.requestsPerSecond, nginx?.requestsPerSecond),
        'non-2xx': result.non2xx,
        errors: result.errors,
      });
    }
  }
  printTable(rows);
  if (rssRows.length > 0) {
    process.stdout.write(
      '\nPeak RSS while clients pull one large zip (per process: a cluster primary first)\n\n',
    );
    printTable(rssRows);
  }
}

/**
 * The production shape beside the embedded default: the proxy (STORAGE_TYPE=grpc, WORKERS=1 as
 * containers run it, its content cache on: memory and a local-disk tier) → the storage service →
 * FerretDB on PostgreSQL, with the bench's versions stored through the storage service. Warm
 * cells are answered from the cache; the table shows what is left of the embedded figures.
 */
async function startProductionShape(
  work: string,
  saved: BenchVersion[],
  upstream: string,
  stops: Array<() => Promise<unknown>>,
): Promise<Target> {
  const env = { PATH: process.env['PATH'] ?? '', HOME: work };
  await ensureFerretDb();
  const ferretDb = await startFerretDb();
  stops.push(() => ferretDb.stop());
  const storageMain = bundleBenchApp(root, 'proxy', 'storage');
  const storage = await startAppProcess(storageMain, {
    env: {
      ...env,
      GRPC_HOST: '127.0.0.1',
      GRPC_PORT: '0',
      HTTP_PORT: '0',
      LOG_LEVEL: 'warn',
      STORAGE_BACKEND: 'mongo',
      MONGODB_URI: ferretDb.uri,
      MONGODB_DATABASE: 'modproxy_proxy_bench',
    },
    ready: /storage service listening: grpc (\S+):(\d+) http (\d+)/,
  });
  stops.push(() => storage.stop(30_000));
  const grpcUrl = `127.0.0.1:${storage.match[2] ?? ''}`;
  const client = new GrpcStorage({ url: grpcUrl });
  for (const version of saved) {
    process.stderr.write(`storing ${version.module}@${version.version} in the storage service…\n`);
    await client.save({ ...version, zip: Readable.from([version.zip]) });
  }
  await client.close();
  const main = bundleBenchApp(root, 'proxy', 'proxy');
  const proxy = await startAppProcess(main, {
    env: {
      ...env,
      PORT: '0',
      STORAGE_TYPE: 'grpc',
      STORAGE_GRPC_URL: grpcUrl,
      UPSTREAM: upstream,
      CACHE_DIR: join(work, 'proxy-cache'),
      LOG_LEVEL: 'warn',
      WORKERS: '1',
      GO_WORK_DIR: work,
    },
    ready: /export GOPROXY=(\S+)/,
  });
  stops.push(() => proxy.stop(30_000));
  return {
    name: 'ours, production shape (grpc, warm cache)',
    url: proxy.match[1] ?? '',
    pids: processTree(proxy.child.pid),
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}
