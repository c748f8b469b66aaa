import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join, normalize, sep } from 'node:path';

/**
 * How the server answers: `ok` serves the files; `down` stops listening (connections are
 * refused); `500`, `404`, `410` answer every request with that status; `slow` serves the files
 * after `slowDelayMs`; `hold` keeps every request waiting until {@link StaticGoproxy.releaseHeld}
 * or the next mode, then serves the files (for "answered without waiting for upstream").
 */
export type StaticGoproxyMode = 'ok' | 'down' | '500' | '404' | '410' | 'slow' | 'hold';

export interface StaticGoproxyOptions {
  /** Delay of the `slow` mode. Default 10000 ms. */
  slowDelayMs?: number;
}

const CONTENT_TYPES: Record<string, string> = {
  '.info': 'application/json',
  '.mod': 'text/plain; charset=utf-8',
  '.zip': 'application/zip',
  list: 'text/plain; charset=utf-8',
  '@latest': 'application/json',
};

/**
 * A GOPROXY on 127.0.0.1 that serves a directory in the GOPROXY layout
 * (`<escaped module>/@v/list`, `<version>.info|.mod|.zip`, `<escaped module>/@latest`),
 * counts requests per path, and can be made to fail, for testing upstream chains and outages.
 */
export class StaticGoproxy {
  readonly dir: string;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly counts = new Map<string, number>();
  private readonly held = new Set<{ path: string; request: IncomingMessage; response: ServerResponse }>();
  private currentMode: StaticGoproxyMode = 'ok';
  private slowDelayMs: number;
  private listeningPort = 0;
  private listening = false;
  private stopped = false;

  private constructor(dir: string, options: StaticGoproxyOptions) {
    this.dir = dir;
    this.slowDelayMs = options.slowDelayMs ?? 10_000;
    this.server = createServer((request, response) => this.handle(request, response));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  static async start(dir: string, options: StaticGoproxyOptions = {}): Promise<StaticGoproxy> {
    const proxy = new StaticGoproxy(dir, options);
    await proxy.listen(0);
    return proxy;
  }

  get port(): number {
    return this.listeningPort;
  }

  /** The base URL to put in GOPROXY or an upstream list, e.g. `http://127.0.0.1:41234`. */
  get url(): string {
    return `http://127.0.0.1:${this.listeningPort}`;
  }

  get mode(): StaticGoproxyMode {
    return this.currentMode;
  }

  /** Switches the behaviour; going `down` and back up keeps the same port. */
  async setMode(mode: StaticGoproxyMode, options: StaticGoproxyOptions = {}): Promise<void> {
    if (this.stopped) throw new Error('the static goproxy is stopped');
    if (options.slowDelayMs !== undefined) this.slowDelayMs = options.slowDelayMs;
    this.currentMode = mode;
    if (mode !== 'hold') this.releaseHeld();
    if (mode === 'down' && this.listening) await this.unlisten();
    if (mode !== 'down' && !this.listening) await this.listen(this.listeningPort);
  }

  /** Requests the `hold` mode keeps waiting right now (their clients still connected). */
  get heldRequests(): number {
    return this.held.size;
  }

  /** Serves the requests the `hold` mode kept waiting; later ones are held again while it lasts. */
  releaseHeld(): void {
    const released = [...this.held];
    this.held.clear();
    for (const { path, request, response } of released) void this.serveFile(path, request, response);
  }

  /** Requests received for a (percent-decoded) URL path such as `/example.test/hello.git/@v/list`. */
  requestCount(path: string): number {
    return this.counts.get(path) ?? 0;
  }

  /** Requests received per URL path. */
  requests(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  get totalRequests(): number {
    let total = 0;
    for (const count of this.counts.values()) total += count;
    return total;
  }

  resetCounters(): void {
    this.counts.clear();
  }

  /** Stops listening and drops every connection. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.held.clear();
    if (this.listening) await this.unlisten();
  }

  private async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    const address = this.server.address();
    if (typeof address === 'object' && address !== null) this.listeningPort = address.port;
    this.listening = true;
  }

  private async unlisten(): Promise<void> {
    this.listening = false;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const path = decodePath(new URL(request.url ?? '/', 'http://127.0.0.1').pathname);
    this.counts.set(path, (this.counts.get(path) ?? 0) + 1);
    switch (this.currentMode) {
      case '500':
      case '404':
      case '410':
        response.writeHead(Number(this.currentMode), { 'content-type': 'text/plain; charset=utf-8' });
        response.end(`static goproxy mode ${this.currentMode}\n`);
        return;
      case 'slow': {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          void this.serveFile(path, request, response);
        }, this.slowDelayMs);
        this.timers.add(timer);
        request.socket.once('close', () => {
          clearTimeout(timer);
          this.timers.delete(timer);
        });
        return;
      }
      case 'hold': {
        const waiting = { path, request, response };
        this.held.add(waiting);
        request.socket.once('close', () => this.held.delete(waiting));
        return;
      }
      default:
        void this.serveFile(path, request, response);
    }
  }

  private async serveFile(
    urlPath: string,
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    const notFound = (): void => {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('not found\n');
    };
    const relative = normalize(urlPath).replace(/^[/\\]+/, '');
    if (
      relative === '' ||
      relative.split(sep).includes('..') ||
      (request.method !== 'GET' && request.method !== 'HEAD')
    ) {
      notFound();
      return;
    }
    const file = join(this.dir, relative);
    const stats = await stat(file).catch(() => undefined);
    if (!stats?.isFile()) {
      notFound();
      return;
    }
    const extension = Object.keys(CONTENT_TYPES).find((suffix) => file.endsWith(suffix));
    response.writeHead(200, {
      'content-type': (extension && CONTENT_TYPES[extension]) ?? 'application/octet-stream',
      'content-length': String(stats.size),
    });
    if (request.method === 'HEAD') {
      response.end();
      return;
    }
    createReadStream(file)
      .on('error', () => response.destroy())
      .pipe(response);
  }
}

/** Percent-decodes a URL path (the go command sends `!` as `%21`); a malformed one is kept as is. */
function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** Starts a `StaticGoproxy` serving `dir` on a free loopback port. */
export function startStaticGoproxy(dir: string, options: StaticGoproxyOptions = {}): Promise<StaticGoproxy> {
  return StaticGoproxy.start(dir, options);
}
