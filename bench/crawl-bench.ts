/**
 * Crawl throughput: modules checked per second by crathens' crawl worker under the per-host
 * limits, beside a bare `git ls-remote` loop over the same repositories (the reference: what
 * listing alone costs, with nothing compared, stored or coordinated).
 *
 *   npm run bench:crawl -- [--modules 200] [--hosts 1,4] [--host-concurrency 4]
 *        [--rate 0] [--crawl-concurrency 16] [--tags 5] [--repeat 3]
 *
 * Fixture git repositories (`file://` behind `https://<host>.test/` through a test-only git
 * config, as the tests do) with a few tags each; the storage service (disk), lathens (Redis)
 * and crathens run as their own processes (the built bundles). Each row queues one CrawlModule
 * job per module and times until the crawl queue is empty. "cold" is the first pass (every
 * version is new: lathens lists the module with the go command and is told to refresh);
 * "warm" is the steady state (nothing new: ls-remote, storage and lathens' cached list). The
 * ls-remote loops and the warm pass run `--repeat` times and the median is shown (the machine
 * is shared), with the slowest and fastest run beside it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { jobsV1 } from '@modproxy/contracts';
import { CRAWL_QUEUE, CrawlQueue } from '@modproxy/queue';
import {
  createTempDir,
  GitRepo,
  removeDir,
  startAppProcess,
  startRedisServer,
  type AppProcess,
} from '@modproxy/testing';
import { parseArgs, printTable } from './bench-support';

const root = join(dirname(process.argv[1] ?? '.'), '..', '..');
const main = (app: string) => join(root, 'dist', 'apps', app, 'main.js');
const args = parseArgs(process.argv.slice(2));
const moduleCount = Number(args.get('modules') ?? 200);
const hostCounts = (args.get('hosts') ?? '1,4').split(',').map(Number);
const hostConcurrency = Number(args.get('host-concurrency') ?? 4);
const rate = Number(args.get('rate') ?? 0);
const crawlConcurrency = Number(args.get('crawl-concurrency') ?? 16);
const tagCount = Number(args.get('tags') ?? 5);
const repeat = Math.max(1, Number(args.get('repeat') ?? 3));

interface Row extends Record<string, string | number> {
  what: string;
  hosts: number;
  'at once': string;
  modules: number;
  seconds: number;
  'modules/s': number;
  'min–max modules/s': string;
}

/** Repositories `bench/m<i>` spread over `hosts` hosts `h<k>.test`; module paths carry `.git`. */
async function createRepositories(
  dir: string,
  env: Record<string, string>,
  hosts: number,
): Promise<string[]> {
  const modules: string[] = [];
  for (let i = 0; i < moduleCount; i++) {
    const host = `h${i % hosts}.test`;
    const repo = await GitRepo.init(join(dir, 'repos', host, 'bench', `m${i}`), { env });
    const path = `${host}/bench/m${i}.git`;
    for (let t = 0; t < tagCount; t++) {
      await repo.commit(
        { 'go.mod': `module ${path}\n\ngo 1.21\n`, 'm.go': `package m\n\nconst V = ${t}\n` },
        `v1.${t}.0`,
      );
      await repo.tag(`v1.${t}.0`);
    }
    modules.push(path);
  }
  return modules;
}

/** `git ls-remote --tags --refs` of every repository, `concurrency` at a time. */
async function lsRemoteLoop(
  modules: readonly string[],
  env: Record<string, string>,
  concurrency: number,
): Promise<number> {
  const started = performance.now();
  let next = 0;
  const run = async (): Promise<void> => {
    for (let i = next++; i < modules.length; i = next++) {
      const url = `https://${(modules[i] ?? '').replace(/\.git$/, '')}`;
      await new Promise<void>((resolve, reject) => {
        const child = spawn('git', ['ls-remote', '--tags', '--refs', url], {
          env,
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.once('error', reject);
        child.once('close', (code) =>
          code === 0 ? resolve() : reject(new Error(`git ls-remote ${url}: ${stderr}`)),
        );
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, run));
  return (performance.now() - started) / 1_000;
}

/** Queues a crawl of every module and waits until the crawl queue is empty; seconds taken. */
async function crawlPass(crawls: CrawlQueue, queue: Queue, modules: readonly string[]): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < modules.length; i += 50) {
    await Promise.all(
      modules
        .slice(i, i + 50)
        .map((module) => crawls.crawlModule(module, jobsV1.CrawlReason.CRAWL_REASON_MANUAL)),
    );
  }
  for (;;) {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed');
    if ((counts['failed'] ?? 0) > 0) {
      const [failed] = await queue.getJobs(['failed'], 0, 0);
      throw new Error(`a crawl failed: ${failed?.failedReason ?? 'unknown'}`);
    }
    if (
      (counts['waiting'] ?? 0) +
        (counts['active'] ?? 0) +
        (counts['delayed'] ?? 0) +
        (counts['prioritized'] ?? 0) ===
      0
    )
      return (performance.now() - started) / 1_000;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function benchHosts(hosts: number, redisUrl: string, rows: Row[]): Promise<void> {
  const dir = await createTempDir('crawl-bench-');
  const started: AppProcess[] = [];
  const connections: Redis[] = [];
  try {
    const home = join(dir, 'home');
    await mkdir(home, { recursive: true });
    const gitConfig = join(dir, 'gitconfig');
    const rewrites = Array.from({ length: hosts }, (_, k) => [
      `[url "file://${join(dir, 'repos', `h${k}.test`)}/"]`,
      `\tinsteadOf = https://h${k}.test/`,
    ]).flat();
    await writeFile(gitConfig, [...rewrites, '[protocol "file"]', '\tallow = always', ''].join('\n'));
    const gitEnv = {
      PATH: process.env['PATH'] ?? '',
      HOME: home,
      GIT_CONFIG_GLOBAL: gitConfig,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_TERMINAL_PROMPT: '0',
    };
    const modules = await createRepositories(dir, gitEnv, hosts);

    const direct = {
      ...gitEnv,
      GOSUMDB: 'off',
      GOTOOLCHAIN: 'local',
      HTTPS_PROXY: 'http://127.0.0.1:9',
      NO_PROXY: '127.0.0.1,localhost',
    };
    const token = randomBytes(24).toString('hex');
    const storage = await startAppProcess(main('storage'), {
      env: {
        ...gitEnv,
        STORAGE_BACKEND: 'disk',
        STORAGE_DIR: join(dir, 'storage'),
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        STORAGE_TOKEN: token,
        LOG_LEVEL: 'warn',
      },
      ready: /grpc 127\.0\.0\.1:(\d+) http (\d+)/,
    });
    started.push(storage);
    const storageUrl = `127.0.0.1:${storage.match[1] ?? ''}`;
    const lathens = await startAppProcess(main('lathens'), {
      env: {
        ...direct,
        STORAGE_TYPE: 'grpc',
        STORAGE_GRPC_URL: storageUrl,
        STORAGE_TOKEN: token,
        REDIS_URL: redisUrl,
        KEY_PREFIX: `crawl-bench-${hosts}:`,
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        GRPC_TOKEN: token,
        UPSTREAM: 'direct',
        SOFT_TTL_MS: '3600000',
        HARD_TTL_MS: '3600000',
        GO_CONCURRENCY: '8',
        LOG_LEVEL: 'warn',
      },
      ready: /lathens listening: grpc (\S+) http (\S+)/,
    });
    started.push(lathens);
    const prefix = `crawlbench${hosts}`;
    const crathens = await startAppProcess(main('crathens'), {
      env: {
        ...direct,
        ADMIN_PORT: '0',
        QUEUE_REDIS_URL: redisUrl,
        QUEUE_PREFIX: prefix,
        STORAGE_GRPC_URL: storageUrl,
        STORAGE_TOKEN: token,
        LATHENS_GRPC_URL: lathens.match[1] ?? '',
        LATHENS_GRPC_TOKEN: token,
        UPSTREAM: 'direct',
        CRAWL_CONCURRENCY: String(crawlConcurrency),
        HOST_CONCURRENCY: String(hostConcurrency),
        HOST_RATE_PER_SECOND: String(rate),
        CRAWL_INTERVAL_MS: '86400000',
        RECENT_CRAWL_INTERVAL_MS: '86400000',
        LOG_LEVEL: 'warn',
      },
      ready: /crathens running: admin (\S+)/,
    });
    started.push(crathens);

    const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
    connections.push(connection);
    const crawls = new CrawlQueue({ connection, prefix });
    const queue = new Queue(CRAWL_QUEUE, { connection, prefix });
    const limit = `${hostConcurrency}/host${rate > 0 ? `, ${rate}/s` : ''}`;
    const add = async (what: string, atOnce: string, runs: number, pass: () => Promise<number>) => {
      const seconds: number[] = [];
      for (let i = 0; i < runs; i++) seconds.push(await pass());
      seconds.sort((a, b) => a - b);
      const median = seconds[Math.floor(seconds.length / 2)] ?? 0;
      const slowest = moduleCount / (seconds.at(-1) ?? 1);
      const fastest = moduleCount / (seconds[0] ?? 1);
      rows.push({
        what,
        hosts,
        'at once': atOnce,
        modules: moduleCount,
        seconds: median,
        'modules/s': moduleCount / median,
        'min–max modules/s': runs > 1 ? `${slowest.toFixed(0)}–${fastest.toFixed(0)}` : '',
      });
    };
    try {
      await add('git ls-remote loop', '1', repeat, () => lsRemoteLoop(modules, gitEnv, 1));
      const parallel = hostConcurrency * hosts;
      await add('git ls-remote loop', String(parallel), repeat, () =>
        lsRemoteLoop(modules, gitEnv, parallel),
      );
      await add('crawl, cold (all new)', limit, 1, () => crawlPass(crawls, queue, modules));
      await add('crawl, warm (nothing new)', limit, repeat, () => crawlPass(crawls, queue, modules));
    } finally {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      await crawls.close();
    }
  } finally {
    for (const connection of connections) await connection.quit();
    for (const process of started.reverse()) await process.stop();
    await removeDir(dir);
  }
}

async function run(): Promise<void> {
  for (const app of ['storage', 'lathens', 'crathens']) {
    execFileSync(process.execPath, [join(root, 'scripts', 'build-app.mjs'), app], {
      cwd: root,
      stdio: 'inherit',
    });
  }
  const redis = await startRedisServer();
  const rows: Row[] = [];
  try {
    for (const hosts of hostCounts) await benchHosts(hosts, redis.url, rows);
  } finally {
    await redis.stop();
  }
  process.stdout.write(
    `\n${moduleCount} modules with ${tagCount} tags each; crathens: CRAWL_CONCURRENCY=${crawlConcurrency}, ` +
      `HOST_CONCURRENCY=${hostConcurrency}, HOST_RATE_PER_SECOND=${rate}; the ls-remote loop runs "at once" commands in parallel\n\n`,
  );
  printTable(rows);
}

await run();
