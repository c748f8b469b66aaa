import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { access, constants, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';

/**
 * A throwaway FerretDB (MongoDB wire protocol over SQLite) for tests: no MongoDB server can be
 * installed on the development and CI machines, so the MongoDB storage is exercised against
 * this real wire-protocol server. Built by scripts/ensure-ferretdb.sh into <repo>/tmp/bin.
 */

const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');

/** Where scripts/ensure-ferretdb.sh puts the binary. */
export const DEFAULT_FERRETDB_BINARY = join(REPO_ROOT, 'tmp', 'bin', 'ferretdb');
const ENSURE_SCRIPT = join(REPO_ROOT, 'scripts', 'ensure-ferretdb.sh');

export interface FerretDbOptions {
  /** Path of the ferretdb binary. Default `<repo>/tmp/bin/ferretdb`. */
  binary?: string;
  /** How long to wait for the server to answer `ping`. Default 30 000 ms. */
  startTimeoutMs?: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL. Default 5 000 ms. */
  stopGraceMs?: number;
}

export interface FerretDbServer {
  /** `mongodb://127.0.0.1:<port>/?directConnection=true` */
  uri: string;
  pid: number;
  /** Stops the server (SIGTERM, then SIGKILL after the grace period) and removes its data. Idempotent. */
  stop(): Promise<void>;
}

/** Log lines kept to explain a failed start. */
const KEPT_LOG_LINES = 40;

/**
 * Builds the ferretdb binary when it is missing (scripts/ensure-ferretdb.sh, a few minutes the
 * first time, then cached under <repo>/tmp/bin) and returns its path.
 */
export async function ensureFerretDb(binary: string = DEFAULT_FERRETDB_BINARY): Promise<string> {
  if (await isExecutable(binary)) return binary;
  if (binary !== DEFAULT_FERRETDB_BINARY)
    throw new Error(`ferretdb binary ${binary} is missing or not executable`);
  try {
    await promisify(execFile)('bash', [ENSURE_SCRIPT], { maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const stderr = (error as { stderr?: unknown }).stderr;
    throw new Error(
      `scripts/ensure-ferretdb.sh failed: ${typeof stderr === 'string' ? stderr.trim() : String(error)}`,
      {
        cause: error,
      },
    );
  }
  if (!(await isExecutable(binary))) throw new Error(`scripts/ensure-ferretdb.sh did not produce ${binary}`);
  return binary;
}

/**
 * Starts FerretDB on 127.0.0.1 with a port the kernel picks, SQLite data in a fresh temp dir,
 * telemetry and the debug HTTP listener off, and resolves once a MongoDB client's `ping`
 * succeeds. The binary must exist (see {@link ensureFerretDb}).
 */
export async function startFerretDb(options: FerretDbOptions = {}): Promise<FerretDbServer> {
  const binary = options.binary ?? DEFAULT_FERRETDB_BINARY;
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const stopGraceMs = options.stopGraceMs ?? 5_000;
  if (!(await isExecutable(binary))) {
    throw new Error(`ferretdb binary ${binary} is missing: run scripts/ensure-ferretdb.sh`);
  }

  const stateDir = await mkdtemp(join(tmpdir(), 'modproxy-ferretdb-'));
  const dataDir = join(stateDir, 'data');
  await mkdir(dataDir);

  const child = spawn(
    binary,
    [
      '--handler=sqlite',
      `--sqlite-url=file:${dataDir}/`,
      `--state-dir=${stateDir}`,
      // Port 0: the kernel picks a free port, read back from the "Listening on" log line.
      '--listen-addr=127.0.0.1:0',
      // `-` turns off the HTTP listener for metrics and pprof (default: a fixed port, 8088).
      '--debug-addr=-',
      '--telemetry=disable',
      // INFO is the least that still logs the listening address; the lines are parsed, not shown.
      '--log-level=INFO',
      '--log-format=json',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FERRETDB_TELEMETRY: 'disable' } },
  );
  const pid = child.pid;
  const exited = new Promise<void>((resolveExit) => {
    if (child.exitCode !== null || child.signalCode !== null) resolveExit();
    else child.once('exit', () => resolveExit());
  });
  // Last resort for a test runner that exits without running teardown: never leave a server behind.
  const killOnExit = () => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      process.removeListener('exit', killOnExit);
      await terminate(child, exited, stopGraceMs);
      await rm(stateDir, { recursive: true, force: true });
    })();
    return stopped;
  };

  try {
    if (pid === undefined) {
      throw new Error(`could not start ${binary}`);
    }
    const address = await waitForListenAddress(child, exited, startTimeoutMs);
    const uri = `mongodb://${address}/?directConnection=true`;
    await waitForPing(uri, exited, startTimeoutMs);
    return { uri, pid, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

interface LogLine {
  msg?: unknown;
}

function waitForListenAddress(
  child: ChildProcess,
  exited: Promise<void>,
  timeoutMs: number,
): Promise<string> {
  const recent: string[] = [];
  return new Promise<string>((resolveAddress, reject) => {
    const timer = setTimeout(
      () => fail(`FerretDB did not report a listening address within ${timeoutMs} ms`),
      timeoutMs,
    );
    const fail = (message: string) => {
      clearTimeout(timer);
      reject(new Error(`${message}; last log lines:\n${recent.join('\n')}`));
    };
    void exited.then(() =>
      fail(`FerretDB exited early (code ${child.exitCode}, signal ${child.signalCode})`),
    );
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      // Keep reading after the address is found, so a full pipe never blocks the server.
      createInterface({ input: stream }).on('line', (line) => {
        recent.push(line);
        if (recent.length > KEPT_LOG_LINES) recent.shift();
        const address = listenAddress(line);
        if (address) {
          clearTimeout(timer);
          resolveAddress(address);
        }
      });
    }
  });
}

/** `127.0.0.1:PORT` from FerretDB's `Listening on TCP 127.0.0.1:PORT...` log line. */
function listenAddress(line: string): string | undefined {
  let parsed: LogLine;
  try {
    parsed = JSON.parse(line) as LogLine;
  } catch {
    return undefined;
  }
  if (typeof parsed.msg !== 'string') return undefined;
  const match = /^Listening on TCP (127\.0\.0\.1:\d+)/.exec(parsed.msg);
  return match?.[1];
}

async function waitForPing(uri: string, exited: Promise<void>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });
  let lastError: unknown;
  while (Date.now() < deadline && !hasExited) {
    const client = new MongoClient(uri, { serverSelectionTimeoutMS: 1_000, connectTimeoutMS: 1_000 });
    try {
      await client.db('admin').command({ ping: 1 });
      return;
    } catch (error) {
      lastError = error;
    } finally {
      await client.close();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `FerretDB at ${uri} did not answer ping ${hasExited ? 'before exiting' : `within ${timeoutMs} ms`}`,
    {
      cause: lastError,
    },
  );
}

async function terminate(child: ChildProcess, exited: Promise<void>, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<'grace-over'>((r) => {
    timer = setTimeout(() => r('grace-over'), graceMs);
  });
  const outcome = await Promise.race([exited.then(() => 'exited' as const), graceOver]);
  clearTimeout(timer);
  if (outcome === 'grace-over') {
    child.kill('SIGKILL');
    await exited;
  }
}
