import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, chown, constants, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { getFreePort, stopChild } from '@modproxy/testing';

/**
 * A throwaway PostgreSQL for tests and benchmarks: FerretDB's primary backend, so that the
 * MongoDB storage is exercised against a MongoDB-wire server that answers queries by pushing
 * them down to a real database (FerretDB's SQLite backend scans a whole collection per query).
 * Debian's server (`postgresql`, installed by scripts/install-system-deps.sh), run from a fresh
 * temp dir on a free loopback port, stopped by its pid.
 */

export interface PostgresServerOptions {
  /** Directory holding `initdb` and `postgres`. Default: `POSTGRES_BIN_DIR`, else the newest `/usr/lib/postgresql/<major>/bin` (Debian's layout), else the one on PATH. */
  binDir?: string;
  /** How long `initdb` plus start-up may take. Default 60 000 ms. */
  startTimeoutMs?: number;
  /** How long `stop()` waits after asking for a fast shutdown before it sends SIGKILL. Default 10 000 ms. */
  stopGraceMs?: number;
}

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres?sslmode=disable`: the superuser, on the maintenance database. */
  readonly url: string;
  readonly port: number;
  /** The postmaster's pid. */
  readonly pid: number;
  /** Stops the server (fast shutdown, then SIGKILL after the grace period) and removes its data. Idempotent. */
  stop(): Promise<void>;
}

const SUPERUSER = 'postgres';
const DEBIAN_ROOT = '/usr/lib/postgresql';
const INSTALL_HINT = 'run scripts/install-system-deps.sh (it installs Debian’s postgresql)';
/** Log lines kept to explain a failed start. */
const KEPT_LOG_LINES = 40;
/** Start attempts: the free port may be taken by someone else before the server binds it. */
const PORT_ATTEMPTS = 3;

/**
 * Server settings for throwaway data: nothing is worth an fsync, and several FerretDB instances
 * (each with a pool of up to 50 connections) may share one server.
 */
const SETTINGS = [
  'listen_addresses=127.0.0.1',
  'fsync=off',
  'synchronous_commit=off',
  'full_page_writes=off',
  'max_connections=400',
];

const run = promisify(execFile);

/**
 * Runs `initdb` into a fresh temp dir and starts `postgres` in the foreground on 127.0.0.1, a
 * free port and a Unix socket in that dir, with trust authentication (loopback only). Run as
 * root, both run as the unprivileged `postgres` user, since PostgreSQL refuses to run as root.
 * Resolves once the server reports that it accepts connections.
 */
export async function startPostgresServer(options: PostgresServerOptions = {}): Promise<PostgresServer> {
  const binDir = options.binDir ?? (await findPostgresBinDir());
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const stopGraceMs = options.stopGraceMs ?? 10_000;
  const deadline = Date.now() + startTimeoutMs;
  const owner = await unprivilegedOwner();
  const stateDir = await mkdtemp(join(tmpdir(), 'modproxy-postgres-'));
  try {
    if (owner) await chown(stateDir, owner.uid, owner.gid);
    const dataDir = join(stateDir, 'data');
    const spawnAs = { cwd: stateDir, env: childEnv(), ...(owner ?? {}) };
    await run(
      join(binDir, 'initdb'),
      ['-D', dataDir, '-U', SUPERUSER, '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'],
      { ...spawnAs, timeout: startTimeoutMs },
    ).catch((error: unknown) => {
      throw new Error(`initdb failed: ${commandOutput(error)}`, { cause: error });
    });

    let lastError: unknown;
    for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
      const port = await getFreePort();
      const args = ['-D', dataDir, '-p', String(port), '-k', stateDir, ...SETTINGS.flatMap((s) => ['-c', s])];
      const child = spawn(join(binDir, 'postgres'), args, { ...spawnAs, stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        return await running(child, port, stateDir, Math.max(deadline - Date.now(), 1), stopGraceMs);
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  } catch (error) {
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  }
}

/** Creates an empty database (a fresh name when none is given) in the server `serverUrl` names, and returns its URL. */
export async function createPostgresDatabase(serverUrl: string, name?: string): Promise<string> {
  const database = name ?? `db_${randomBytes(6).toString('hex')}`;
  await client('createdb', serverUrl, [database]);
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.href;
}

/** Drops a database of the server `serverUrl` names; a missing one is not an error. */
export async function dropPostgresDatabase(serverUrl: string, name: string): Promise<void> {
  await client('dropdb', serverUrl, ['--if-exists', '--force', name]);
}

/**
 * Creates a superuser role (any password is accepted: trust authentication). FerretDB's
 * PostgreSQL backend passes a MongoDB client's PLAIN credentials on to PostgreSQL, so a test
 * that connects with a user name needs that role.
 */
export async function createPostgresRole(serverUrl: string, name: string): Promise<void> {
  await client('createuser', serverUrl, ['--superuser', name]);
}

/** Where Debian (or `POSTGRES_BIN_DIR`, or PATH) has PostgreSQL's server programs. */
export async function findPostgresBinDir(): Promise<string> {
  const fromEnv = process.env['POSTGRES_BIN_DIR'];
  if (fromEnv) {
    if (await isExecutable(join(fromEnv, 'initdb'))) return fromEnv;
    throw new Error(`POSTGRES_BIN_DIR=${fromEnv} holds no initdb`);
  }
  const majors = await readdir(DEBIAN_ROOT).catch(() => [] as string[]);
  for (const major of majors.filter((m) => /^\d+$/.test(m)).sort((a, b) => Number(b) - Number(a))) {
    const dir = join(DEBIAN_ROOT, major, 'bin');
    if (await isExecutable(join(dir, 'initdb'))) return dir;
  }
  for (const dir of (process.env['PATH'] ?? '').split(':').filter(Boolean)) {
    if ((await isExecutable(join(dir, 'initdb'))) && (await isExecutable(join(dir, 'postgres')))) return dir;
  }
  throw new Error(`PostgreSQL's server programs (initdb, postgres) are not installed: ${INSTALL_HINT}`);
}

/** The user the server runs as when this process is root: `postgres`, which Debian's package creates. */
async function unprivilegedOwner(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number((await run('id', ['-u', SUPERUSER])).stdout.trim());
    const gid = Number((await run('id', ['-g', SUPERUSER])).stdout.trim());
    if (Number.isInteger(uid) && uid > 0 && Number.isInteger(gid)) return { uid, gid };
  } catch {
    // Reported below.
  }
  throw new Error(`PostgreSQL refuses to run as root and there is no '${SUPERUSER}' user: ${INSTALL_HINT}`);
}

/** Nothing of this process's environment (tokens, passwords) reaches the server. */
function childEnv(): Record<string, string> {
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C.UTF-8' };
}

async function running(
  child: ChildProcess,
  port: number,
  stateDir: string,
  timeoutMs: number,
  stopGraceMs: number,
): Promise<PostgresServer> {
  const exited = new Promise<void>((resolveExit) => {
    if (child.exitCode !== null || child.signalCode !== null) resolveExit();
    else child.once('exit', () => resolveExit());
  });
  // Last resort for a runner that exits without teardown: an immediate shutdown, by pid.
  const killOnExit = () => {
    child.kill('SIGQUIT');
  };
  process.once('exit', killOnExit);
  let stopped: Promise<void> | undefined;
  const stop = (removeData: boolean): Promise<void> => {
    stopped ??= (async () => {
      process.removeListener('exit', killOnExit);
      // SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client to disconnect).
      await stopChild(child, { signal: 'SIGINT', graceMs: stopGraceMs });
      if (removeData) await rm(stateDir, { recursive: true, force: true });
    })();
    return stopped;
  };
  try {
    if (child.pid === undefined) throw new Error('could not start postgres');
    await waitForReady(child, exited, timeoutMs);
    const pid = child.pid;
    return {
      url: `postgres://${SUPERUSER}@127.0.0.1:${port}/postgres?sslmode=disable`,
      port,
      pid,
      stop: () => stop(true),
    };
  } catch (error) {
    // The data dir stays for the next attempt on another port; the caller removes it in the end.
    await stop(false);
    throw error;
  }
}

function waitForReady(child: ChildProcess, exited: Promise<void>, timeoutMs: number): Promise<void> {
  const recent: string[] = [];
  return new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(
      () => fail(`PostgreSQL did not accept connections within ${timeoutMs} ms`),
      timeoutMs,
    );
    const fail = (message: string) => {
      clearTimeout(timer);
      reject(new Error(`${message}; last log lines:\n${recent.join('\n')}`));
    };
    void exited.then(() =>
      fail(`postgres exited early (code ${child.exitCode}, signal ${child.signalCode})`),
    );
    child.once('error', (error) => fail(`cannot run postgres: ${error.message}`));
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      // Keep reading after start-up, so a full pipe never blocks the server.
      createInterface({ input: stream }).on('line', (line) => {
        recent.push(line);
        if (recent.length > KEPT_LOG_LINES) recent.shift();
        if (line.includes('database system is ready to accept connections')) {
          clearTimeout(timer);
          resolveReady();
        }
      });
    }
  });
}

/** Runs one of PostgreSQL's client programs against the server `serverUrl` names. */
async function client(program: string, serverUrl: string, args: string[]): Promise<void> {
  const url = new URL(serverUrl);
  const binDir = await findPostgresBinDir();
  const target = ['-h', url.hostname, '-p', url.port || '5432', '-U', decodeURIComponent(url.username)];
  try {
    await run(join(binDir, program), [...target, ...args], { env: childEnv(), timeout: 30_000 });
  } catch (error) {
    throw new Error(`${program} ${args.join(' ')} failed: ${commandOutput(error)}`, { cause: error });
  }
}

function commandOutput(error: unknown): string {
  const { stderr, stdout } = error as { stderr?: unknown; stdout?: unknown };
  const text = [stderr, stdout].filter((s): s is string => typeof s === 'string' && s.trim() !== '');
  return text.length > 0 ? text.join('\n').trim() : String(error);
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
