/**
 * Cold `.mod` (and `.info`) latency with an upstream GOPROXY: the go command asks for the go.mod
 * of far more versions than it downloads zips of, and a proxy that fetched the whole version
 * first made each such request wait for the zip.
 *
 *   npm run bench:cold-mod -- [--versions 5] [--zip-mib 36] [--latency-ms 20] [--zip-mib-per-s 40]
 *        [--queued]
 *
 * The upstream is a GOPROXY on loopback over files in the GOPROXY layout that answers like a
 * distant one: every answer starts `--latency-ms` after its request, and zips (`--zip-mib`, one
 * per version, random so they stay large, 36 MiB like aws-sdk-go's) flow at `--zip-mib-per-s`.
 * Each row asks for `--versions` versions nobody asked for before, one after the other, and
 * shows the time to the last byte of the answer: the upstream's own `.mod`, the embedded proxy's
 * cold `.mod` and `.info` (the built bundle, disk storage, in-process fetch), and its cold `.zip`,
 * which is what a cold `.mod` waited for before early answers. `--queued` adds the production
 * shape (storage service on FerretDB/PostgreSQL, crathens, lathens, 1 replica with the queue).
 * Target: a cold `.mod` within 1.5 times the upstream's own.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { dirname, join, normalize } from 'node:path';
import { ensureFerretDb, startFerretDb } from '@modproxy/storage-mongo/testing';
import {
  createTempDir,
  removeDir,
  startAppProcess,
  startRedisServer,
  writeLargeModule,
  type AppProcess,
  type LargeModule,
} from '@modproxy/testing';
import { startQueuedShape } from '../apps/e2e/src/queued-shape';
import { bundleBenchApp, parseArgs, printTable } from './bench-support';

const root = join(dirname(process.argv[1] ?? '.'), '..', '..');
const args = parseArgs(process.argv.slice(2));
const versions = Math.max(1, Number(args.get('versions') ?? 5));
const zipMiB = Number(args.get('zip-mib') ?? 36);
const latencyMs = Number(args.get('latency-ms') ?? 20);
const zipMiBPerSecond = Number(args.get('zip-mib-per-s') ?? 40);
const queued = args.get('queued') === 'true';

/**
 * A GOPROXY that answers like a distant one: each answer after `latencyMs`, zips at a bounded
 * rate (64 KiB slices, paced), everything else at once once it starts.
 */
async function startDistantGoproxy(dir: string): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/');
    const file = join(dir, normalize(path).replace(/^[/\\]+/, ''));
    setTimeout(() => {
      void stat(file).then(
        (stats) => {
          if (!stats.isFile()) throw new Error('not a file');
          res.writeHead(200, { 'content-length': stats.size, 'content-type': 'application/octet-stream' });
          const stream = createReadStream(file, { highWaterMark: 64 * 1024 });
          if (!path.endsWith('.zip')) return void stream.pipe(res);
          const started = performance.now();
          let sent = 0;
          stream.on('data', (chunk) => {
            sent += chunk.length;
            const due = (sent / (zipMiBPerSecond * 1024 * 1024)) * 1000 - (performance.now() - started);
            if (!res.write(chunk) || due > 0) {
              stream.pause();
              const resume = () => stream.resume();
              if (due > 0) setTimeout(resume, due);
              else res.once('drain', resume);
            }
          });
          stream.on('end', () => res.end());
          res.on('close', () => stream.destroy());
        },
        () => {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('not found\n');
        },
      );
    }, latencyMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One GET on its own connection, timed to the last byte. */
function get(url: string): Promise<{ status: number; bytes: number; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(url, { agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, ms: performance.now() - started }));
    });
    req.on('error', () => resolve({ status: -1, bytes: 0, ms: performance.now() - started }));
    req.end();
  });
}

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
};
const round = (value: number) => (value >= 100 ? Math.round(value) : Math.round(value * 10) / 10);

async function main(): Promise<void> {
  const proxyMain = bundleBenchApp(root, 'cold-mod', 'proxy');
  // The queued shape starts the bundles in dist/, as the e2e tests do.
  for (const app of queued ? ['proxy', 'storage', 'lathens', 'crathens'] : []) {
    execFileSync(process.execPath, [join(root, 'scripts', 'build-app.mjs'), app], { stdio: 'inherit' });
  }
  const dir = await createTempDir('cold-mod-bench-');
  const goproxyDir = join(dir, 'goproxy');
  // One set of cold versions per row: nothing a row asks for was asked for before.
  // The upstream's own .mod is measured on the versions the proxy's .mod row asks for next.
  const rows = ['mod', 'info', 'zip', ...(queued ? ['queued-mod', 'queued-zip'] : [])];
  const sets = new Map<string, LargeModule[]>();
  process.stderr.write(`writing ${rows.length * versions} versions of ${zipMiB} MiB…\n`);
  for (const row of rows) {
    const list: LargeModule[] = [];
    for (let i = 0; i < versions; i++) {
      list.push(
        await writeLargeModule(goproxyDir, {
          module: `example.test/cold-mod/${row}`,
          version: `v1.${i}.0`,
          zipBytes: zipMiB * 1024 * 1024,
        }),
      );
    }
    sets.set(row, list);
  }
  const upstream = await startDistantGoproxy(goproxyDir);
  const embeddedDir = join(dir, 'embedded');
  await mkdir(embeddedDir, { recursive: true });
  const started: AppProcess[] = [];
  const closers: Array<() => Promise<unknown>> = [];
  try {
    const embedded = await startAppProcess(proxyMain, {
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: dir,
        LOG_LEVEL: 'warn',
        PORT: '0',
        WORKERS: '1',
        STORAGE_TYPE: 'disk',
        STORAGE_DIR: join(embeddedDir, 'storage'),
        UPSTREAM: upstream.url,
      },
      cwd: embeddedDir,
      ready: /export GOPROXY=(\S+)/,
    });
    started.push(embedded);
    const embeddedUrl = embedded.match[1] ?? '';
    let queuedUrl = '';
    if (queued) {
      process.stderr.write('FerretDB: building it if missing (a few minutes the first time)…\n');
      await ensureFerretDb();
      const ferret = await startFerretDb();
      closers.push(() => ferret.stop());
      const redis = await startRedisServer();
      closers.push(() => redis.stop());
      const shape = await startQueuedShape({
        root,
        mongoUri: ferret.uri,
        redisUrl: redis.url,
        upstream: upstream.url,
        replicas: 1,
        crathensEnv: { HOST_CONCURRENCY: '8', HOST_RATE_PER_SECOND: '1000' },
      });
      closers.unshift(() => shape.stop());
      queuedUrl = shape.proxies[0] ?? '';
    }

    // Between requests, the fetches behind earlier answers end first: each answer is timed on its
    // own, not against the zips of the ones before (the machine has two cores).
    const settle = async (base: string) => {
      for (let i = 0; i < 600; i++) {
        const metrics = await new Promise<string>((resolve) => {
          const req = request(`${base}/metrics`, { agent: false }, (res) => {
            let text = '';
            res.on('data', (chunk: Buffer) => (text += chunk.toString()));
            res.on('end', () => resolve(text));
          });
          req.on('error', () => resolve(''));
          req.end();
        });
        const inFlight = /^modproxy_(fetches_in_flight|queue_fetch_waiters) (\d+)/gm;
        let busy = false;
        for (const match of metrics.matchAll(inFlight)) if (Number(match[2]) > 0) busy = true;
        if (!busy) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    const measure = async (what: string, base: string, row: string, file: 'mod' | 'info' | 'zip') => {
      const times: number[] = [];
      for (const module of sets.get(row) ?? []) {
        if (base !== upstream.url) await settle(base);
        const got = await get(`${base}${module.zipUrlPath.replace(/\.zip$/, `.${file}`)}`);
        if (got.status !== 200)
          throw new Error(`${what}: ${module.module}@${module.version} answered ${got.status}`);
        times.push(got.ms);
      }
      return { what, times };
    };
    const results = [
      await measure('upstream GOPROXY, its own .mod', upstream.url, 'mod', 'mod'),
      await measure('embedded proxy, cold .mod', embeddedUrl, 'mod', 'mod'),
      await measure('embedded proxy, cold .info', embeddedUrl, 'info', 'info'),
      await measure(
        'embedded proxy, cold .zip (what a cold .mod waited for before)',
        embeddedUrl,
        'zip',
        'zip',
      ),
      ...(queued
        ? [
            await measure('production shape (queue), cold .mod', queuedUrl, 'queued-mod', 'mod'),
            await measure('production shape (queue), cold .zip', queuedUrl, 'queued-zip', 'zip'),
          ]
        : []),
    ];
    const own = quantile(results[0]?.times ?? [], 0.5);
    process.stdout.write(
      `\nCold answers with an upstream GOPROXY (${latencyMs} ms to every answer, zips of ${zipMiB} MiB at ${zipMiBPerSecond} MiB/s; ${versions} cold versions per row, one after the other)\n\n`,
    );
    printTable(
      results.map(({ what, times }) => ({
        request: what,
        requests: times.length,
        'p50 ms': round(quantile(times, 0.5)),
        'p90 ms': round(quantile(times, 0.9)),
        'max ms': round(Math.max(...times)),
        'p50 / upstream .mod p50': round(quantile(times, 0.5) / own),
      })),
    );
  } finally {
    for (const child of started.reverse()) await child.stop();
    for (const close of closers) await close().catch(() => undefined);
    await upstream.close();
    await removeDir(dir);
  }
}

await main();
