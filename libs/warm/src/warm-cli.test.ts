import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errors } from '@modproxy/errors';
import { createQueueRedis, FETCH_QUEUE, JobWorker } from '@modproxy/queue';
import { createTempDir, getFreePort, removeDir, startRedisServer, type RedisServer } from '@modproxy/testing';
import { runWarmCli, type WarmCliIo } from './warm-cli';

/** What the CLI printed. */
function io(
  options: { tty?: boolean; env?: Record<string, string> } = {},
): WarmCliIo & { out(): string; err(): string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (text: string) => (out += text), isTTY: options.tty ?? false, columns: 120 },
    stderr: { write: (text: string) => (err += text) },
    env: options.env ?? {},
    out: () => out,
    err: () => err,
  };
}

/**
 * A GOPROXY stand-in that answers as modproxy does: `X-Modproxy-Source: storage` for versions
 * it "has", `upstream` the first time it serves any other, and the status it is told to for
 * failing ones. It records every request.
 */
class FakeProxy {
  readonly requests: string[] = [];
  readonly stored = new Set<string>();
  readonly failing = new Map<string, [number, string]>();
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const path = req.url ?? '';
      this.requests.push(path);
      const match = /^\/(.+)\/@v\/(.+)\.(mod|info|zip)$/.exec(path);
      const key = match ? `${match[1]}@${match[2]}` : '';
      const failure = this.failing.get(key);
      if (!match || failure) {
        res.writeHead(failure?.[0] ?? 404, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`${failure?.[1] ?? 'not found'}\n`);
        return;
      }
      const source = this.stored.has(key) ? 'storage' : 'upstream';
      this.stored.add(key);
      const body = match[3] === 'zip' ? Buffer.alloc(2048, 7) : Buffer.from(`${match[3]} of ${key}\n`);
      res.writeHead(200, { 'x-modproxy-source': source, 'content-length': String(body.length) });
      res.end(body);
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('the warm command', () => {
  let dir: string;
  let proxy: FakeProxy;
  let redis: RedisServer;

  beforeAll(async () => {
    dir = await createTempDir('warm-cli-');
    proxy = new FakeProxy();
    await proxy.start();
    redis = await startRedisServer();
  });

  afterAll(async () => {
    await proxy?.stop();
    await redis?.stop();
    await removeDir(dir);
  });

  async function file(name: string, lines: string[]): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, `${lines.join('\n')}\n`);
    return path;
  }

  it('fetches .mod, .info and .zip of every go.sum entry through the proxy and tells fetched from already there', async () => {
    const modules = Array.from({ length: 24 }, (_, i) => `example.test/warm/m${i}`);
    const goSum = await file(
      'go.sum',
      modules.flatMap((module) => [`${module} v1.0.0 h1:aaaa=`, `${module} v1.0.0/go.mod h1:bbbb=`]),
    );
    for (const module of modules.slice(0, 4)) proxy.stored.add(`${module}@v1.0.0`);
    const run = io();
    const code = await runWarmCli([goSum, '--proxy', proxy.url, '--concurrency', '5'], run);
    expect([code, run.err()]).toEqual([0, '']);
    for (const module of modules) {
      for (const kind of ['mod', 'info', 'zip'])
        expect(proxy.requests).toContain(`/${module}/@v/v1.0.0.${kind}`);
    }
    const out = run.out();
    expect(out).toContain('warming 24 module versions\n');
    expect(out).toMatch(/\[24\/24\] (fetched|already there) example\.test\/warm\/m\d+@v1\.0\.0\n/);
    expect(out).toContain(`warm: 24 module versions from ${goSum} (go.sum), through ${proxy.url}\n`);
    expect(out).toContain('  fetched:           20\n  already there:      4\n  failed:             0\n');
    expect(out).toContain(
      'already there (4):\n  example.test/warm/m0@v1.0.0\n  example.test/warm/m1@v1.0.0\n',
    );
    expect(out).not.toContain('failed (');
  });

  it('exits 1 and says why for every failure, unusable lines included', async () => {
    proxy.failing.set('example.test/warm/gone@v1.0.0', [410, 'example.test/warm/gone@v1.0.0: gone upstream']);
    proxy.failing.set('example.test/warm/broken@v1.0.0', [
      502,
      'example.test/warm/broken@v1.0.0: upstream failed: 500',
    ]);
    const list = await file('modules.txt', [
      'example.test/warm/ok@v1.0.0',
      'example.test/warm/gone@v1.0.0',
      'example.test/warm/broken@v1.0.0',
      'example.test/warm/typo@1.0.0',
    ]);
    const run = io();
    expect(await runWarmCli([list, '--proxy', `${proxy.url}/`], run)).toBe(1);
    const out = run.out();
    expect(out).toContain('  fetched:            1\n  already there:      0\n  failed:             3\n');
    expect(out).toContain(
      [
        'failed (3):',
        '  example.test/warm/gone@v1.0.0: .mod: 410 example.test/warm/gone@v1.0.0: gone upstream',
        '  example.test/warm/broken@v1.0.0: .mod: 502 example.test/warm/broken@v1.0.0: upstream failed: 500',
        '  line 4 "example.test/warm/typo@1.0.0": invalid version "1.0.0": not a canonical semantic version',
      ].join('\n'),
    );
    expect(out).toContain('FAILED example.test/warm/gone@v1.0.0: .mod: 410');
  });

  it('says when the proxy cannot be reached', async () => {
    const list = await file('unreachable.txt', ['example.test/warm/far@v1.0.0']);
    const run = io();
    const closed = await getFreePort();
    expect(await runWarmCli([list, '--proxy', `http://127.0.0.1:${closed}`], run)).toBe(1);
    expect(run.out()).toContain('  example.test/warm/far@v1.0.0: .mod: ECONNREFUSED\n');
  });

  it('draws a progress bar on a terminal', async () => {
    const list = await file('tty.txt', ['example.test/warm/tty-a@v1.0.0', 'example.test/warm/tty-b@v1.0.0']);
    const run = io({ tty: true });
    expect(await runWarmCli([list, '--proxy', proxy.url], run)).toBe(0);
    expect(run.out()).toMatch(/warming \[=+\] 2\/2 \| 2 fetched, 0 already there, 0 failed/);
    expect(run.out()).not.toContain('[1/2]');
  });

  it('queues every entry for crathens and reports what each job did', async () => {
    const prefix = `warm-${randomUUID()}`;
    const connection = createQueueRedis(redis.url);
    const handled: string[] = [];
    const worker = new JobWorker({
      queueName: FETCH_QUEUE,
      connection,
      prefix,
      handlers: {
        FetchVersion: async ({ module, version }) => {
          handled.push(`${module}@${version}`);
          if (module.endsWith('/missing'))
            throw errors.notFound('test.fetch', `${module}@${version}: not found upstream`);
          return { result: module.endsWith('/stored') ? 'already-stored' : 'fetched' };
        },
      },
    });
    await worker.start();
    try {
      const goMod = await file('queued.mod', [
        'module example.test/app',
        'require (',
        '\texample.test/warm/new v1.0.0',
        '\texample.test/warm/stored v1.2.0',
        '\texample.test/warm/missing v0.1.0',
        ')',
      ]);
      const run = io({ env: { QUEUE_REDIS_URL: redis.url, QUEUE_PREFIX: prefix } });
      expect(await runWarmCli([goMod, '--queue'], run)).toBe(1);
      expect(handled.sort()).toEqual([
        'example.test/warm/missing@v0.1.0',
        'example.test/warm/new@v1.0.0',
        'example.test/warm/stored@v1.2.0',
      ]);
      const out = run.out();
      expect(out).toContain(`(go.mod), queued for crathens (prefix ${prefix})\n`);
      expect(out).toContain('  fetched:            1\n  already there:      1\n  failed:             1\n');
      expect(out).toContain(
        'failed (1):\n  example.test/warm/missing@v0.1.0: not-found: example.test/warm/missing@v0.1.0: not found upstream\n',
      );
    } finally {
      await worker.close(1_000);
      await connection.quit();
    }
  });

  it('refuses bad usage with exit 2 and a message naming the option', async () => {
    const list = await file('usage.txt', ['example.test/warm/u@v1.0.0']);
    const closed = await getFreePort();
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [[list], {}, /give either --proxy URL or --queue/],
      [[list, '--proxy', proxy.url, '--queue'], {}, /give either --proxy URL or --queue/],
      [['--proxy', proxy.url], {}, /name exactly one file/],
      [[list, '--proxy', 'not a url'], {}, /--proxy must be an absolute http\(s\) URL/],
      [[list, '--proxy', 'http://user:secret-pw@127.0.0.1:1'], {}, /--proxy must not carry credentials/],
      [[list, '--queue'], {}, /--queue needs --redis-url or QUEUE_REDIS_URL/],
      [
        [list, '--proxy', proxy.url, '--concurrency', '0'],
        {},
        /--concurrency must be a whole number greater than 0/,
      ],
      [[list, '--proxy', proxy.url, '--bogus'], {}, /Unknown option '--bogus'/],
      [[join(dir, 'absent.txt'), '--proxy', proxy.url], {}, /cannot read .*absent\.txt: ENOENT/],
      [
        [list, '--queue', '--redis-url', `redis://:secret-pw@127.0.0.1:${closed}`],
        {},
        /no answer from the queue Redis/,
      ],
    ];
    for (const [args, env, expected] of cases) {
      const run = io({ env });
      expect(await runWarmCli(args, run), args.join(' ')).toBe(2);
      expect(run.err(), args.join(' ')).toMatch(expected);
      expect(run.err() + run.out()).not.toContain('secret-pw');
    }
  }, 60_000);
});
