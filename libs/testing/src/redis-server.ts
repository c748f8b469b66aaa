import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { getFreePort } from './free-port';
import { stopChild } from './stop-child';
import { createTempDir, removeDir } from './temp-dir';

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Stops the server (by its pid) and removes its directory. Idempotent. */
  stop(): Promise<void>;
  /** Stops the server and starts a new one on the same port, empty: nothing is persisted. */
  restart(): Promise<void>;
}

export interface StartRedisServerOptions {
  /** The redis-server binary. Default `redis-server` from PATH (scripts/install-system-deps.sh installs it). */
  binary?: string;
  /** How long start-up may take before it fails. Default 10000 ms. */
  startTimeoutMs?: number;
  /** Clients must AUTH with this (`--requirepass`); `url` does not carry it. Default: none. */
  password?: string;
}

const STOP_GRACE_MS = 5_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One PING over a raw socket (after AUTH when a password is set): true when the server answered PONG. */
function ping(port: number, password: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    const auth = password === undefined ? '' : `AUTH ${JSON.stringify(password)}\r\n`;
    const expected = password === undefined ? '+PONG\r\n' : '+OK\r\n+PONG\r\n';
    socket.once('connect', () => socket.write(`${auth}PING\r\n`));
    socket.on('data', (data: Buffer) => {
      answer += data.toString('latin1');
      if (answer.length >= expected.length || answer.startsWith('-')) done(answer.startsWith(expected));
    });
  });
}

/**
 * Runs a throw-away `redis-server` on 127.0.0.1 for a test: a free port, no persistence
 * (`--save '' --appendonly no`), its own temporary directory, answered PING before this
 * resolves. The test must call `stop()`; the process is only ever signalled by its pid.
 */
export async function startRedisServer(options: StartRedisServerOptions = {}): Promise<RedisServer> {
  const binary = options.binary ?? 'redis-server';
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const dir = await createTempDir('modproxy-redis-');
  let child: ChildProcess | undefined;
  let stopped = false;

  const launch = async (port: number): Promise<ChildProcess> => {
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      ...(options.password === undefined ? [] : ['--requirepass', options.password]),
    ];
    const started = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (data: Buffer) => {
      if (output.length < 8_192) output += data.toString('utf8');
    };
    started.stdout?.on('data', collect);
    started.stderr?.on('data', collect);
    let spawnError: Error | undefined;
    started.once('error', (error) => {
      spawnError = error;
    });
    const deadline = Date.now() + startTimeoutMs;
    while (Date.now() < deadline) {
      if (spawnError) throw new Error(`cannot run ${binary}: ${spawnError.message}`);
      if (started.exitCode !== null || started.signalCode !== null) {
        throw new Error(`redis-server exited during start-up (port ${port}):\n${output}`);
      }
      if (await ping(port, options.password)) return started;
      await sleep(25);
    }
    await stopChild(started, { graceMs: STOP_GRACE_MS });
    throw new Error(
      `redis-server did not answer PING on port ${port} within ${startTimeoutMs} ms:\n${output}`,
    );
  };

  // The free port may be taken by someone else before redis binds it: try a few.
  let port = 0;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3 && !child; attempt++) {
    port = await getFreePort();
    try {
      child = await launch(port);
    } catch (error) {
      lastError = error;
    }
  }
  if (!child) {
    await removeDir(dir);
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      if (child) await stopChild(child, { graceMs: STOP_GRACE_MS });
      await removeDir(dir);
    },
    restart: async () => {
      if (stopped) throw new Error('the redis server is stopped');
      if (child) await stopChild(child, { graceMs: STOP_GRACE_MS });
      child = await launch(port);
    },
  };
  return server;
}
