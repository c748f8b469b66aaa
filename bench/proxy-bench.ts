/**
 * Warm GOPROXY throughput and latency: `.info`, `.mod`, and `.zip` (1 MiB and 50 MiB) through
 * the proxy (built bundle, disk storage, no upstream) and through a plain static file server over
 * the same files (the ceiling), at several connection counts; then the peak RSS of each server.
 *
 *   npm run bench:proxy -- [--duration 10] [--connections 1,16,64] [--static-port 0]
 *                          [--compare http://127.0.0.1:3001]
 *
 * The load generator is wrk when installed (`apt-get install wrk`), else autocannon, which is
 * itself the bottleneck for large zips. `--compare` puts another proxy beside ours: give it the static server as its upstream (start
 * it with GOPROXY/upstream http://127.0.0.1:<--static-port>) and it is warmed with one request
 * per file before it is measured.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { Readable } from 'node:stream';
import { DiskStorage } from '@modproxy/storage';
import { startAppProcess } from '@modproxy/testing';
import {
  hasWrk,
  load,
  loadWithWrk,
  type LoadResult,
  parseArgs,
  peakRssMiB,
  printTable,
} from './bench-support';

const root = join(dirname(process.argv[1] ?? '.'), '..', '..');
const args = parseArgs(process.argv.slice(2));

if (args.has('help')) {
  process.stdout.write(
    'usage: npm run bench:proxy -- [--duration 10] [--connections 1,16,64] [--static-port 0] [--compare URL] [--loader wrk|autocannon]\n',
  );
} else if (args.has('serve-static')) {
  serveStatic(args.get('serve-static') ?? '.', Number(args.get('port') ?? 0));
} else {
  await main();
}

/** The ceiling: files straight from disk, with Content-Length, nothing else. */
function serveStatic(dir: string, port: number): void {
  const server = createServer(async (req, res) => {
    const path = normalize(join(dir, decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/')));
    if (!path.startsWith(dir)) return void res.writeHead(400).end();
    try {
      const info = await stat(path);
      res.writeHead(200, { 'Content-Length': info.size });
      createReadStream(path).pipe(res);
    } catch {
      res.writeHead(404).end('not found\n');
    }
  });
  server.listen(port, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(
      `static listening on ${typeof address === 'object' && address ? address.port : port}\n`,
    );
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

interface BenchFile {
  endpoint: string;
  path: string;
}

async function prepare(work: string): Promise<BenchFile[]> {
  const storage = await DiskStorage.open({ root: join(work, 'storage') });
  const files: BenchFile[] = [];
  for (const [name, size] of [
    ['small', 1024 * 1024],
    ['large', 50 * 1024 * 1024],
  ] as const) {
    const module = `bench.test/${name}`;
    const version = 'v1.0.0';
    const info = Buffer.from(JSON.stringify({ Version: version, Time: '2024-01-01T00:00:00Z' }));
    const mod = Buffer.from(`module ${module}\n\ngo 1.21\n`);
    const zip = randomBytes(size);
    await storage.save({ module, version, info, mod, zip: Readable.from([zip]) });
    const dir = join(work, 'static', module, '@v');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `${version}.info`), info);
    await writeFile(join(dir, `${version}.mod`), mod);
    await writeFile(join(dir, `${version}.zip`), zip);
    if (name === 'small') {
      files.push({ endpoint: '.info', path: `/${module}/@v/${version}.info` });
      files.push({ endpoint: '.mod', path: `/${module}/@v/${version}.mod` });
      files.push({ endpoint: '.zip 1 MiB', path: `/${module}/@v/${version}.zip` });
    } else {
      files.push({ endpoint: '.zip 50 MiB', path: `/${module}/@v/${version}.zip` });
    }
  }
  await storage.close();
  return files;
}

async function main(): Promise<void> {
  const duration = Number(args.get('duration') ?? 10);
  const connections = (args.get('connections') ?? '1,16,64').split(',').map(Number);
  const work = join(tmpdir(), `modproxy-bench-${process.pid}`);
  await rm(work, { recursive: true, force: true });
  const files = await prepare(work);

  const loader = args.get('loader') ?? (hasWrk() ? 'wrk' : 'autocannon');
  const drive = loader === 'wrk' ? loadWithWrk : load;
  execFileSync(process.execPath, [join(root, 'scripts', 'build-app.mjs'), 'proxy'], { stdio: 'inherit' });
  const env = { PATH: process.env['PATH'] ?? '' };
  const proxy = await startAppProcess(join(root, 'dist', 'apps', 'proxy', 'main.js'), {
    env: { ...env, PORT: '0', STORAGE_DIR: join(work, 'storage'), UPSTREAM: 'off', LOG_LEVEL: 'warn' },
    ready: /export GOPROXY=(\S+)/,
  });
  const staticServer = await startAppProcess(process.argv[1] ?? '', {
    args: ['--serve-static', join(work, 'static'), '--port', args.get('static-port') ?? '0'],
    env,
    ready: /static listening on (\d+)/,
  });
  const targets: Array<{ name: string; url: string; pid?: number }> = [
    { name: 'modproxy', url: proxy.match[1] ?? '', pid: proxy.child.pid },
    {
      name: 'static files',
      url: `http://127.0.0.1:${staticServer.match[1] ?? ''}`,
      pid: staticServer.child.pid,
    },
  ];
  const results: LoadResult[] = [];
  // An interrupted run still stops the servers it started.
  const interrupt = () => void Promise.all([proxy.stop(), staticServer.stop()]).then(() => process.exit(130));
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    const compare = args.get('compare');
    if (compare) {
      for (const file of files)
        await fetch(`${compare}${file.path}`).then((response) => response.arrayBuffer());
      targets.push({ name: `compare ${compare}`, url: compare });
    }
    for (const file of files) {
      for (const count of connections) {
        for (const target of targets) {
          process.stderr.write(`${target.name} ${file.endpoint} c=${count}…\n`);
          results.push(await drive(target.name, file.endpoint, `${target.url}${file.path}`, count, duration));
        }
      }
    }
  } finally {
    const rss = targets
      .filter((target) => target.pid)
      .map((target) => ({ server: target.name, 'peak RSS MiB': peakRssMiB(target.pid ?? 0) }));
    await proxy.stop();
    await staticServer.stop();
    await rm(work, { recursive: true, force: true });
    process.stdout.write(`\nWarm GOPROXY requests, ${duration} s per cell (${loader}, loopback)\n\n`);
    printTable(
      results.map((result) => ({
        target: result.target,
        endpoint: result.endpoint,
        conns: result.connections,
        'req/s': result.requestsPerSecond,
        'MiB/s': result.mibPerSecond,
        'p50 ms': result.p50Ms,
        'p99 ms': result.p99Ms,
        'non-2xx': result.non2xx,
        errors: result.errors,
      })),
    );
    process.stdout.write('\n');
    printTable(rss);
  }
}
