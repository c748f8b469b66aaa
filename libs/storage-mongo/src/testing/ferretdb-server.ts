import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { access, constants, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { stopChild } from '@modproxy/testing';
import {
  createPostgresDatabase,
  dropPostgresDatabase,
  startPostgresServer,
  type PostgresServer,
} from './postgres-server';

/**
 * A throwaway FerretDB (MongoDB wire protocol) for tests and benchmarks: no MongoDB server can
 * be installed on the development and CI machines, so the MongoDB storage is exercised against
 * this real wire-protocol server. Built by scripts/ensure-ferretdb.sh into <repo>/tmp/bin.
 * Its data lives in PostgreSQL, FerretDB's primary backend, or in SQLite files.
 */

/** The ensure script marks the repository root: found from this file, or from a bundle of it, or from the working directory. */
const ENSURE_SCRIPT_PATH = join('scripts', 'ensure-ferretdb.sh');

function findRepoRoot(): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    for (let dir = resolve(start); ; dir = dirname(dir)) {
      if (existsSync(join(dir, ENSURE_SCRIPT_PATH))) return dir;
      if (dirname(dir) === dir) break;
    }
  }
  return process.cwd();
}

const REPO_ROOT = findRepoRoot();

/**
 * Where scripts/ensure-ferretdb.sh puts the binary: under the repository that holds this file
 * (or the bundle made of it, e.g. a bench in tmp/run/), else the working directory's.
 */
export const DEFAULT_FERRETDB_BINARY = join(REPO_ROOT, 'tmp', 'bin', 'ferretdb');
const ENSURE_SCRIPT = join(REPO_ROOT, ENSURE_SCRIPT_PATH);

/**
 * Where FerretDB keeps its data. `postgresql`, FerretDB's primary backend, pushes equality
 * filters down to PostgreSQL; `sqlite` scans a whole collection for every query (3.9 s to find
 * one GridFS file's chunks among 560), so it is kept only as a second backend.
 */
export type FerretDbBackend = 'postgresql' | 'sqlite';

export interface FerretDbOptions {
  /** Path of the ferretdb binary. Default `<repo>/tmp/bin/ferretdb`. */
  binary?: string;
  /** Where the data lives. Default `postgresql`. */
  backend?: FerretDbBackend;
  /**
   * `postgresql` only: a running PostgreSQL (a superuser URL, such as {@link PostgresServer.url})
   * in which this FerretDB gets a fresh database of its own, dropped by `stop()`. Default: a
   * PostgreSQL started for this FerretDB alone, stopped with it.
   */
  postgresUrl?: string;
  /** How long to wait for the server to answer `ping`. Default 30 000 ms. */
  startTimeoutMs?: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL. Default 5 000 ms. */
  stopGraceMs?: number;
}

export interface FerretDbServer {
  /** `mongodb://127.0.0.1:<port>/?directConnection=true` */
  uri: string;
  pid: number;
  backend: FerretDbBackend;
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
 * Starts FerretDB on 127.0.0.1 with a port the kernel picks, its data in PostgreSQL (a fresh
 * database) or in SQLite files in a fresh temp dir, telemetry and the debug HTTP listener off,
 * and resolves once a MongoDB client's `ping` succeeds. The binary must exist (see
 * {@link ensureFerretDb}).
 */
export async function startFerretDb(options: FerretDbOptions = {}): Promise<FerretDbServer> {
  const binary = options.binary ?? DEFAULT_FERRETDB_BINARY;
  const backend = options.backend ?? 'postgresql';
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const stopGraceMs = options.stopGraceMs ?? 5_000;
  if (!(await isExecutable(binary))) {
    throw new Error(`ferretdb binary ${binary} is missing: run scripts/ensure-ferretdb.sh`);
  }

  const stateDir = await mkdtemp(join(tmpdir(), 'modproxy-ferretdb-'));
  let data: BackendData;
  try {
    data = await prepareBackend(backend, options.postgresUrl, stateDir);
  } catch (error) {
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  }

  const child = spawn(
    binary,
    [
      ...data.args,
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
    // Nothing of this process's environment (tokens, passwords) reaches the server.
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', FERRETDB_TELEMETRY: 'disable' },
    },
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
      await stopChild(child, { graceMs: stopGraceMs });
      await data.release();
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
    return { uri, pid, backend, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

interface BackendData {
  /** The `--handler` flags that point FerretDB at its data. */
  args: string[];
  /** Gives the data back once FerretDB has stopped. */
  release(): Promise<void>;
}

async function prepareBackend(
  backend: FerretDbBackend,
  postgresUrl: string | undefined,
  stateDir: string,
): Promise<BackendData> {
  if (backend === 'sqlite') {
    const dataDir = join(stateDir, 'data');
    await mkdir(dataDir);
    return { args: ['--handler=sqlite', `--sqlite-url=file:${dataDir}/`], release: async () => undefined };
  }
  if (postgresUrl !== undefined) {
    // One PostgreSQL database per FerretDB: FerretDB maps its own databases to schemas in it.
    const name = `ferretdb_${randomBytes(6).toString('hex')}`;
    const url = await createPostgresDatabase(postgresUrl, name);
    return {
      args: ['--handler=postgresql', `--postgresql-url=${url}`],
      // The shared server may be gone already at the end of a run: then so is the database.
      release: () => dropPostgresDatabase(postgresUrl, name).catch(() => undefined),
    };
  }
  const server: PostgresServer = await startPostgresServer();
  try {
    const url = await createPostgresDatabase(server.url, 'ferretdb');
    return { args: ['--handler=postgresql', `--postgresql-url=${url}`], release: () => server.stop() };
  } catch (error) {
    await server.stop();
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
