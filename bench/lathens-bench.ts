/**
 * list/latest throughput and latency through the proxy backed by lathens (or lathens' own HTTP
 * with `--target lathens`), warm, at 16 and 64 connections, and the number of upstream calls
 * while it runs at full rate (the point of lathens: about one per module and kind per soft TTL,
 * however many requests arrive).
 *
 *   npm run bench:lathens -- [--target proxy|lathens] [--modules 50] [--duration 10]
 *        [--full-duration 60] [--soft-ttl-ms 5000] [--connections 16,64]
 *
 * lathens and the proxy run as their own processes (the built bundles) with a throw-away Redis;
 * the upstream is a static GOPROXY on loopback that counts its requests; storage is memory.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import autocannon from 'autocannon';
import { escapePath } from '@modproxy/gomod';
import {
  createTempDir,
  removeDir,
  startAppProcess,
  startRedisServer,
  startStaticGoproxy,
} from '@modproxy/testing';
import { parseArgs, peakRssMiB, printTable } from './bench-support';

const root = join(dirname(process.argv[1] ?? '.'), '..', '..');
const args = parseArgs(process.argv.slice(2));
const moduleCount = Number(args.get('modules') ?? 50);
const duration = Number(args.get('duration') ?? 10);
const fullDuration = Number(args.get('full-duration') ?? 60);
const target = args.get('target') ?? 'proxy';
const softTtlMs = Number(args.get('soft-ttl-ms') ?? 5_000);
const connectionCounts = (args.get('connections') ?? '16,64').split(',').map(Number);

const modules = Array.from({ length: moduleCount }, (_, i) => `example.test/bench/module${i}`);
const versions = Array.from({ length: 30 }, (_, i) => `v1.${i}.0`);

interface Row extends Record<string, string | number> {
  endpoint: string;
  connections: number;
  'req/s': number;
  'p50 ms': number;
  'p99 ms': number;
  non2xx: number;
  errors: number;
  'upstream calls': number;
}

async function run(baseUrl: string, paths: string[], connections: number, seconds: number) {
  return autocannon({
    url: baseUrl,
    connections,
    duration: seconds,
    pipelining: 1,
    requests: paths.map((path) => ({ method: 'GET', path })),
  });
}

async function main(): Promise<void> {
  for (const app of ['lathens', 'proxy']) {
    execFileSync(process.execPath, [join(root, 'scripts', 'build-app.mjs'), app], {
      cwd: root,
      stdio: 'inherit',
    });
  }
  const redis = await startRedisServer();
  const upstreamDir = await createTempDir('lathens-bench-upstream-');
  for (const module of modules) {
    const base = join(upstreamDir, escapePath(module));
    await mkdir(join(base, '@v'), { recursive: true });
    await writeFile(join(base, '@v', 'list'), versions.map((version) => `${version}\n`).join(''));
    await writeFile(join(base, '@latest'), `{"Version":"${versions.at(-1)}","Time":"2024-01-01T00:00:00Z"}`);
  }
  const upstream = await startStaticGoproxy(upstreamDir);
  const env = {
    PATH: process.env['PATH'] ?? '',
    HOST: '127.0.0.1',
    HTTP_PORT: '0',
    GRPC_PORT: '0',
    REDIS_URL: redis.url,
    UPSTREAM: upstream.url,
    STORAGE_TYPE: 'none',
    SOFT_TTL_MS: String(softTtlMs),
    HARD_TTL_MS: String(Math.max(600_000, softTtlMs)),
    LOG_LEVEL: 'info',
  };
  const lathens = await startAppProcess(join(root, 'dist', 'apps', 'lathens', 'main.js'), {
    env,
    ready: /lathens listening: grpc (\S+) http (\S+)/,
  });
  const { child, match } = lathens;
  const proxy =
    target === 'proxy'
      ? await startAppProcess(join(root, 'dist', 'apps', 'proxy', 'main.js'), {
          env: {
            PATH: env.PATH,
            PORT: '0',
            STORAGE_TYPE: 'memory',
            UPSTREAM: upstream.url,
            LATHENS_GRPC_URL: match[1] ?? '',
            LOG_LEVEL: 'warn',
          },
          ready: /export GOPROXY=(\S+)/,
        })
      : undefined;
  const baseUrl = proxy ? (proxy.match[1] ?? '') : (match[2] ?? '');
  const listPaths = modules.map((module) => `/${escapePath(module)}/@v/list`);
  const latestPaths = modules.map((module) => `/${escapePath(module)}/@latest`);
  const rows: Row[] = [];
  try {
    for (const path of [...listPaths, ...latestPaths]) {
      const response = await fetch(`${baseUrl}${path}`);
      if (response.status !== 200) throw new Error(`warm-up ${path}: ${response.status}`);
      await response.text();
    }
    await run(baseUrl, listPaths, 16, 2);

    for (const [endpoint, paths] of [
      ['list', listPaths],
      ['latest', latestPaths],
    ] as const) {
      for (const connections of connectionCounts) {
        const before = upstream.totalRequests;
        const result = await run(baseUrl, paths, connections, duration);
        rows.push({
          endpoint,
          connections,
          'req/s': result.requests.average,
          'p50 ms': result.latency.p50,
          'p99 ms': result.latency.p99,
          non2xx: result.non2xx,
          errors: result.errors,
          'upstream calls': upstream.totalRequests - before,
        });
      }
    }

    const before = upstream.totalRequests;
    const mixed = await run(
      baseUrl,
      [...listPaths, ...latestPaths],
      Math.max(...connectionCounts),
      fullDuration,
    );
    const calls = upstream.totalRequests - before;
    rows.push({
      endpoint: `list+latest ${fullDuration}s`,
      connections: Math.max(...connectionCounts),
      'req/s': mixed.requests.average,
      'p50 ms': mixed.latency.p50,
      'p99 ms': mixed.latency.p99,
      non2xx: mixed.non2xx,
      errors: mixed.errors,
      'upstream calls': calls,
    });
    const answers = modules.length * 2;
    const windows = (fullDuration * 1_000) / softTtlMs;
    process.stdout.write(
      `\n${proxy ? 'proxy → lathens' : 'lathens HTTP'}, ${modules.length} modules, soft TTL ${softTtlMs} ms, warm; ` +
        `peak RSS lathens ${peakRssMiB(child.pid ?? 0).toFixed(0)} MiB` +
        `${proxy ? `, proxy ${peakRssMiB(proxy.child.pid ?? 0).toFixed(0)} MiB` : ''}\n\n`,
    );
    printTable(rows);
    process.stdout.write(
      `\nFull-rate run: ${mixed.requests.total} requests, ${calls} upstream calls for ${answers} answers over ${windows.toFixed(1)} soft-TTL windows ` +
        `= ${(calls / (answers * windows)).toFixed(2)} calls per answer per soft TTL (target: about 1 or less).\n`,
    );
  } finally {
    await proxy?.stop();
    await lathens.stop();
    await upstream.stop();
    await redis.stop();
    await removeDir(upstreamDir);
  }
}

await main();
