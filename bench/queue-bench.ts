/**
 * Cold fetches through the production shape with the fetch queue, and the cold burst.
 *
 *   npm run bench:queue -- [--small-kib 64] [--large-mib 50] [--repeat 5] [--large-repeat 3]
 *        [--clients 100] [--replicas 3] [--burst-kib 31,36864]
 *
 * Everything runs as its own process (the built bundles) on loopback: the storage service on
 * FerretDB, lathens and crathens on Redis, proxy replicas with QUEUE_REDIS_URL, and a fixture
 * GOPROXY (a static file server that counts requests) as the upstream.
 *
 * Cold-fetch latency: the time until a client has the last byte of a zip nobody has asked for
 * before, through a replica (miss → FetchVersion job → crathens fetches, verifies, saves to the
 * storage service → the replica streams it from storage), beside the same zip straight from the
 * fixture GOPROXY and through an embedded proxy (in-process fetch, disk storage). Each row is
 * a fresh version per repetition; the median is shown with the fastest and slowest.
 *
 * Cold burst: `--clients` concurrent requests for one cold zip spread over `--replicas`
 * replicas: how many upstream fetches they caused and how many clients got the right bytes,
 * with the queue and, for comparison, with replicas that fetch in process.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { ensureFerretDb, startFerretDb } from '@modproxy/storage-mongo/testing';
import {
  createTempDir,
  removeDir,
  startAppProcess,
  startRedisServer,
  startStaticGoproxy,
  writeLargeModule,
  type AppProcess,
  type LargeModule,
} from '@modproxy/testing';
import { startQueuedShape } from '../apps/e2e/src/queued-shape';
import { parseArgs, printTable } from './bench-support';

const root = join(dirname(process.argv[1] ?? '.'), '..', '..');
const args = parseArgs(process.argv.slice(2));
const smallKiB = Number(args.get('small-kib') ?? 64);
const largeMiB = Number(args.get('large-mib') ?? 50);
const repeat = Math.max(1, Number(args.get('repeat') ?? 5));
const largeRepeat = Math.max(1, Number(args.get('large-repeat') ?? 3));
const clients = Number(args.get('clients') ?? 100);
const replicas = Number(args.get('replicas') ?? 3);
const burstKiBs = (args.get('burst-kib') ?? '31,36864').split(',').map(Number);

interface Got {
  status: number;
  sha256: string;
  bytes: number;
  ms: number;
}

/** One GET on its own connection, timed to the last byte. */
function get(url: string): Promise<Got> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(url, { agent: false }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          sha256: hash.digest('hex'),
          bytes,
          ms: performance.now() - started,
        }),
      );
      res.on('error', () => resolve({ status: -1, sha256: '', bytes, ms: performance.now() - started }));
    });
    req.on('error', () => resolve({ status: -1, sha256: '', bytes: 0, ms: performance.now() - started }));
    req.end();
  });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
};
const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
};
const round = (value: number) => (value >= 100 ? Math.round(value) : Math.round(value * 10) / 10);

async function main(): Promise<void> {
  for (const app of ['proxy', 'storage', 'lathens', 'crathens']) {
    execFileSync(process.execPath, [join(root, 'scripts', 'build-app.mjs'), app], { stdio: 'inherit' });
  }
  process.stderr.write('FerretDB: building it if missing (a few minutes the first time)…\n');
  await ensureFerretDb();
  const ferret = await startFerretDb();
  const redis = await startRedisServer();
  const dir = await createTempDir('queue-bench-');
  const goproxyDir = join(dir, 'goproxy');
  const sizes = [
    { label: `${smallKiB} KiB`, bytes: smallKiB * 1024, count: repeat },
    { label: `${largeMiB} MiB`, bytes: largeMiB * 1024 * 1024, count: largeRepeat },
  ];
  const modules = new Map<string, LargeModule[]>();
  for (const size of sizes) {
    const list: LargeModule[] = [];
    for (let i = 0; i < size.count; i++) {
      list.push(
        await writeLargeModule(goproxyDir, {
          module: `example.test/bench/${size.bytes}/m${i}`,
          zipBytes: size.bytes,
        }),
      );
    }
    modules.set(size.label, list);
  }
  const bursts: LargeModule[] = [];
  for (const kib of burstKiBs) {
    for (const mode of ['queue', 'in-process']) {
      bursts.push(
        await writeLargeModule(goproxyDir, {
          module: `example.test/burst/${kib}/${mode}`,
          zipBytes: kib * 1024,
        }),
      );
    }
  }
  const upstream = await startStaticGoproxy(goproxyDir);
  const shape = await startQueuedShape({
    root,
    mongoUri: ferret.uri,
    redisUrl: redis.url,
    upstream: upstream.url,
    replicas,
    // At info, crathens logs each fetch's own duration (upstream, verification, save).
    crathensEnv: { HOST_CONCURRENCY: '8', HOST_RATE_PER_SECOND: '1000', LOG_LEVEL: 'info' },
  });
  const embeddedDir = join(dir, 'embedded');
  await mkdir(embeddedDir, { recursive: true });
  let embedded: AppProcess | undefined;
  try {
    embedded = await startAppProcess(join(root, 'dist', 'apps', 'proxy', 'main.js'), {
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: dir,
        LOG_LEVEL: 'warn',
        PORT: '0',
        STORAGE_TYPE: 'disk',
        STORAGE_DIR: join(embeddedDir, 'storage'),
        UPSTREAM: upstream.url,
      },
      cwd: embeddedDir,
      ready: /export GOPROXY=(\S+)/,
    });
    const embeddedUrl = embedded.match[1] ?? '';

    const latency: Array<Record<string, string | number>> = [];
    for (const size of sizes) {
      const list = modules.get(size.label) ?? [];
      const targets: Array<[string, string]> = [
        ['fixture GOPROXY directly', upstream.url],
        ['production shape: queue → crathens → storage service', shape.proxies[0] ?? ''],
        ['embedded proxy: in-process fetch, disk', embeddedUrl],
        // The same zips once more: what streaming a stored zip from the storage service costs.
        ['production shape, the same zip again (stored)', shape.proxies[1] ?? ''],
      ];
      for (const [what, base] of targets) {
        const times: number[] = [];
        for (const module of list) {
          const got = await get(`${base}${module.zipUrlPath}`);
          if (got.status !== 200 || got.sha256 !== module.zipSha256) {
            throw new Error(`${what}: ${module.module} answered ${got.status} (${got.bytes} bytes)`);
          }
          times.push(got.ms);
        }
        const mib = size.bytes / (1024 * 1024);
        latency.push({
          zip: size.label,
          path: what,
          'cold fetches': times.length,
          'median ms': round(median(times)),
          'min–max ms': `${round(Math.min(...times))}–${round(Math.max(...times))}`,
          'MiB/s (median)': round(mib / (median(times) / 1000)),
        });
      }
    }
    process.stdout.write('\nCold-fetch latency (time to the last byte of a zip nobody asked for before)\n\n');
    printTable(latency);
    const crathens = shape.processes.find((child) => /crathens running/.test(child.stdout()));
    const jobs = (crathens?.stdout() ?? '')
      .split('\n')
      .filter((line) => line.includes('"fetched and stored"'))
      .map((line) => JSON.parse(line) as { module: string; durationMs: number });
    const jobRows = sizes.map((size) => {
      const ms = jobs
        .filter((job) => job.module.includes(`/bench/${size.bytes}/`))
        .map((job) => job.durationMs);
      return {
        zip: size.label,
        'crathens jobs': ms.length,
        'fetch+verify+save median ms': round(median(ms)),
      };
    });
    process.stdout.write(
      "\nInside the production shape: crathens' own fetch (upstream, verification, save to the storage service)\n\n",
    );
    printTable(jobRows);

    const burstRows: Array<Record<string, string | number>> = [];
    const inProcess: string[] = [];
    for (let i = 0; i < replicas; i++) inProcess.push(await shape.startProxy({ QUEUE_REDIS_URL: '' }));
    for (const [i, kib] of burstKiBs.entries()) {
      for (const [mode, urls] of [
        ['queue', shape.proxies],
        ['in-process', inProcess],
      ] as const) {
        const module = bursts[i * 2 + (mode === 'queue' ? 0 : 1)] as LargeModule;
        const started = performance.now();
        const answers = await Promise.all(
          Array.from({ length: clients }, (_, c) =>
            get(`${urls[c % urls.length] ?? ''}${module.zipUrlPath}`),
          ),
        );
        const wallMs = performance.now() - started;
        const served = answers.filter((a) => a.status === 200 && a.sha256 === module.zipSha256).length;
        const times = answers.map((a) => a.ms);
        burstRows.push({
          zip: kib >= 1024 ? `${round(kib / 1024)} MiB` : `${kib} KiB`,
          'miss path': mode === 'queue' ? 'fetch queue (crathens)' : 'each replica fetches',
          replicas: urls.length,
          clients,
          'upstream zip fetches': upstream.requestCount(module.zipUrlPath),
          'clients served': `${served}/${clients}`,
          'p50 ms': round(quantile(times, 0.5)),
          'p99 ms': round(quantile(times, 0.99)),
          'all done ms': round(wallMs),
        });
      }
    }
    process.stdout.write(
      `\nCold burst (${clients} concurrent clients over ${replicas} replicas, one cold version)\n\n`,
    );
    printTable(burstRows);
  } finally {
    await embedded?.stop();
    await shape.stop();
    await upstream.stop();
    await redis.stop();
    await ferret.stop();
    await removeDir(dir);
  }
}

await main();
