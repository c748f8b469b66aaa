import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { redactText } from '@modproxy/config';
import { ProxyWarmer } from './proxy-warmer';
import { QueueWarmer } from './queue-warmer';
import { parseWarmFile } from './warm-entries';
import { createWarmProgress, type ProgressOutput } from './warm-progress';
import { runWarm } from './warm-run';
import { formatWarmSummary } from './warm-summary';
import type { Warmer } from './warmer';

export interface WarmCliIo {
  stdout: ProgressOutput;
  stderr: { write(text: string): unknown };
  env: Readonly<Record<string, string | undefined>>;
  signal?: AbortSignal;
}

export const WARM_USAGE = `usage: npm run warm -- <go.sum | go.mod | file of module@version lines> (--proxy URL | --queue) [options]

  --proxy URL          fetch every entry through this GOPROXY (.mod, .info and .zip)
  --queue              queue a FetchVersion job per entry for crathens, on QUEUE_REDIS_URL
  --redis-url URL      the queue Redis (default: $QUEUE_REDIS_URL)
  --queue-prefix P     BullMQ key prefix, crathens' (default: $QUEUE_PREFIX or modproxy)
  --no-wait            with --queue: queue the jobs and do not wait for them
  --concurrency N      entries warmed at once (default 8)
  --timeout-ms N       deadline of each entry (default 300000)

Exit status: 0 when every entry is stored, 1 when any failed, 2 for a usage error.
`;

class UsageError extends Error {}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw new UsageError(`--${name} must be a whole number greater than 0`);
  return Number(value);
}

/** The warm command; resolves with its exit status. */
export async function runWarmCli(argv: readonly string[], io: WarmCliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        proxy: { type: 'string' },
        queue: { type: 'boolean' },
        'redis-url': { type: 'string' },
        'queue-prefix': { type: 'string' },
        'no-wait': { type: 'boolean' },
        concurrency: { type: 'string' },
        'timeout-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    io.stderr.write(`warm: ${(error as Error).message}\n\n${WARM_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(WARM_USAGE);
    return 0;
  }
  let warmer: Warmer;
  let source: string;
  let concurrency: number;
  const file = positionals[0];
  try {
    if (positionals.length !== 1 || file === undefined) throw new UsageError('name exactly one file');
    if (Boolean(values.proxy) === Boolean(values.queue))
      throw new UsageError('give either --proxy URL or --queue');
    concurrency = positive('concurrency', values.concurrency, 8);
    const timeoutMs = positive('timeout-ms', values['timeout-ms'], 300_000);
    if (values.proxy !== undefined) {
      let url: URL;
      try {
        url = new URL(values.proxy);
      } catch {
        throw new UsageError('--proxy must be an absolute http(s) URL');
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new UsageError('--proxy must be an http(s) URL');
      if (url.username || url.password) throw new UsageError('--proxy must not carry credentials');
      if (values['no-wait']) throw new UsageError('--no-wait goes with --queue');
      warmer = new ProxyWarmer({ proxyUrl: values.proxy, timeoutMs });
      source = `through ${url.origin}${url.pathname.replace(/\/$/, '')}`;
    } else {
      const redisUrl = values['redis-url'] ?? io.env['QUEUE_REDIS_URL'];
      if (!redisUrl) throw new UsageError('--queue needs --redis-url or QUEUE_REDIS_URL');
      if (!/^rediss?:\/\//.test(redisUrl))
        throw new UsageError('the queue Redis must be a redis:// or rediss:// URL');
      const prefix = values['queue-prefix'] ?? io.env['QUEUE_PREFIX'] ?? 'modproxy';
      const queueWarmer = new QueueWarmer({
        redisUrl,
        prefix,
        timeoutMs,
        noWait: values['no-wait'] ?? false,
      });
      try {
        await queueWarmer.ready();
      } catch (error) {
        await queueWarmer.close();
        io.stderr.write(`warm: ${redactText((error as Error).message)}\n`);
        return 2;
      }
      warmer = queueWarmer;
      source = `queued for crathens (prefix ${prefix})`;
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`warm: ${error.message}\n\n${WARM_USAGE}`);
    return 2;
  }
  try {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      io.stderr.write(`warm: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}\n`);
      return 2;
    }
    const { format, entries, errors } = parseWarmFile(text, file);
    const report = await runWarm(entries, warmer, createWarmProgress(io.stdout), {
      concurrency,
      ...(io.signal ? { signal: io.signal } : {}),
    });
    io.stdout.write(formatWarmSummary(report, errors, `${file} (${format}), ${source}`));
    return report.failed.length + errors.length > 0 ? 1 : 0;
  } finally {
    await warmer.close();
  }
}
