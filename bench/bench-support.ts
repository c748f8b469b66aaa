import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import autocannon from 'autocannon';

/**
 * Bundles `apps/<app>` (main.js and instrument.js, as `npm run build` does) into
 * `tmp/bench-bundles/<bench>/<app>/` and returns the main.js path: bundles of the bench's own,
 * since dist/ is rebuilt by every e2e run, which may happen while a bench is running.
 */
export function bundleBenchApp(root: string, bench: string, app: string): string {
  const outDir = join(root, 'tmp', 'bench-bundles', bench, app);
  const script = pathToFileURL(join(root, 'scripts', 'build-app.mjs')).href;
  execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { bundleAppTo } = await import(${JSON.stringify(script)}); await bundleAppTo(${JSON.stringify(app)}, ${JSON.stringify(outDir)});`,
    ],
    { cwd: root, stdio: ['ignore', 2, 2] },
  );
  process.stderr.write(`built ${join(outDir, 'main.js')}\n`);
  return join(outDir, 'main.js');
}

export interface LoadResult {
  target: string;
  endpoint: string;
  connections: number;
  requestsPerSecond: number;
  mibPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

/** wrk when it is installed (`apt-get install wrk`): C, so the load generator is not the bottleneck. */
export function hasWrk(): boolean {
  return spawnSync('wrk', ['--version']).error === undefined;
}

const UNITS: Record<string, number> = {
  us: 0.001,
  ms: 1,
  s: 1000,
  B: 1,
  KB: 1024,
  MB: 1024 ** 2,
  GB: 1024 ** 3,
  TB: 1024 ** 4,
};

function scaled(text: string | undefined): number {
  const match = /^([\d.]+)([a-zA-Z]*)$/.exec(text ?? '');
  return match ? Number(match[1]) * (UNITS[match[2] ?? ''] ?? 1) : Number.NaN;
}

export interface LoadOptions {
  /** Paths on `url`'s server to ask for in turn, instead of `url`'s own path. */
  paths?: string[];
}

/**
 * Drives one URL with wrk (`--latency`, a 60 s per-request timeout) and reads its report. wrk
 * runs as a child while this process goes on (it can watch the servers meanwhile).
 */
export async function loadWithWrk(
  target: string,
  endpoint: string,
  url: string,
  connections: number,
  durationSeconds: number,
  options: LoadOptions = {},
): Promise<LoadResult> {
  const threads = String(Math.min(2, connections));
  const scriptDir = options.paths ? await mkdtemp(join(tmpdir(), 'wrk-paths-')) : undefined;
  let out: string;
  try {
    const script: string[] = [];
    if (scriptDir && options.paths) {
      const file = join(scriptDir, 'paths.lua');
      await writeFile(
        file,
        `local paths = {${options.paths.map((path) => JSON.stringify(path)).join(', ')}}\n` +
          'local i = 0\n' +
          'request = function()\n  i = i % #paths + 1\n  return wrk.format("GET", paths[i])\nend\n',
      );
      script.push('-s', file);
    }
    const args = ['-t', threads, '-c', String(connections), '-d', `${durationSeconds}s`, '--timeout', '60s'];
    const result = await promisify(execFile)('wrk', [...args, '--latency', ...script, url], {
      encoding: 'utf8',
    }).catch((error: unknown) => {
      throw new Error(`wrk failed: ${String((error as { stderr?: unknown }).stderr ?? error)}`);
    });
    out = result.stdout;
  } finally {
    if (scriptDir) await rm(scriptDir, { recursive: true, force: true });
  }
  const field = (pattern: RegExp) => pattern.exec(out)?.[1];
  const errors = [...(field(/Socket errors: (.*)/) ?? '').matchAll(/\d+/g)].reduce(
    (sum, [n]) => sum + Number(n),
    0,
  );
  return {
    target,
    endpoint,
    connections,
    requestsPerSecond: Number(field(/Requests\/sec:\s+([\d.]+)/)),
    mibPerSecond: scaled(field(/Transfer\/sec:\s+(\S+)/)) / (1024 * 1024),
    p50Ms: scaled(field(/\s50%\s+(\S+)/)),
    p99Ms: scaled(field(/\s99%\s+(\S+)/)),
    non2xx: Number(field(/Non-2xx or 3xx responses: (\d+)/) ?? 0),
    errors,
  };
}

/** Drives one URL with autocannon for `durationSeconds` and returns the figures we print. */
export async function load(
  target: string,
  endpoint: string,
  url: string,
  connections: number,
  durationSeconds: number,
  options: LoadOptions = {},
): Promise<LoadResult> {
  const requests = options.paths?.map((path) => ({ method: 'GET' as const, path }));
  const result = await autocannon({
    url,
    connections,
    duration: durationSeconds,
    pipelining: 1,
    ...(requests ? { requests } : {}),
  });
  return {
    target,
    endpoint,
    connections,
    requestsPerSecond: result.requests.average,
    mibPerSecond: result.throughput.average / (1024 * 1024),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/** Peak resident set size of a process (VmHWM), in MiB; Linux only. */
export function peakRssMiB(pid: number): number {
  return procStatusMiB(pid, 'VmHWM');
}

/** Current resident set size of a process (VmRSS), in MiB; Linux only. */
export function rssMiB(pid: number): number {
  return procStatusMiB(pid, 'VmRSS');
}

function procStatusMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

export function printTable(rows: Array<Record<string, string | number>>): void {
  if (rows.length === 0) return;
  const headers = Object.keys(rows[0] ?? {});
  const cells = rows.map((row) => headers.map((header) => formatCell(row[header])));
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...cells.map((row) => (row[column] ?? '').length)),
  );
  const line = (values: string[]) =>
    `| ${values.map((value, column) => value.padStart(widths[column] ?? 0)).join(' | ')} |`;
  process.stdout.write(`${line(headers)}\n|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|\n`);
  for (const row of cells) process.stdout.write(`${line(row)}\n`);
}

function formatCell(value: string | number | undefined): string {
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(1);
  return value ?? '';
}

export function parseArgs(argv: string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 1) {
    const key = argv[i];
    if (key?.startsWith('--')) {
      const value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) args.set(key.slice(2), 'true');
      else {
        args.set(key.slice(2), value);
        i += 1;
      }
    }
  }
  return args;
}
