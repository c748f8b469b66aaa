import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join, normalize, sep } from 'node:path';

export interface Pause {
  /** Resolves once the headers and the first bytes are written to the connection. */
  reached: Promise<void>;
  /** Sends the rest of the body. */
  resume(): void;
}

/**
 * A GOPROXY on 127.0.0.1 over a directory in the GOPROXY layout that can stop in the middle of
 * a body on request: the next request for a path sends its headers (the full Content-Length)
 * and part of the body, then waits. Lets a test act while a download is exactly halfway, with
 * no sleep.
 */
export class PausingGoproxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly pauses = new Map<string, { bytes: number; reached: () => void; resumed: Promise<void> }>();
  private readonly counts = new Map<string, number>();
  private port = 0;

  private constructor(readonly dir: string) {
    this.server = createServer((request, response) => void this.handle(request, response));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  static async start(dir: string): Promise<PausingGoproxy> {
    const proxy = new PausingGoproxy(dir);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    const address = proxy.server.address();
    proxy.port = typeof address === 'object' && address !== null ? address.port : 0;
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The next request for `urlPath` (percent-decoded) stops after `bytes` bytes of its body. */
  pauseAfter(urlPath: string, bytes: number): Pause {
    let reached!: () => void;
    let resume!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    const resumed = new Promise<void>((resolve) => (resume = resolve));
    this.pauses.set(urlPath, { bytes, reached, resumed });
    return { reached: reachedPromise, resume };
  }

  requestCount(urlPath: string): number {
    return this.counts.get(urlPath) ?? 0;
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let path: string;
    try {
      path = decodeURIComponent(new URL(request.url ?? '/', 'http://127.0.0.1').pathname);
    } catch {
      path = request.url ?? '/';
    }
    this.counts.set(path, (this.counts.get(path) ?? 0) + 1);
    const relative = normalize(path).replace(/^[/\\]+/, '');
    const file = join(this.dir, relative);
    const stats = await stat(file).catch(() => undefined);
    if (relative === '' || relative.split(sep).includes('..') || !stats?.isFile()) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('not found\n');
      return;
    }
    const headers = { 'content-type': 'application/octet-stream', 'content-length': String(stats.size) };
    const pause = this.pauses.get(path);
    if (!pause) {
      response.writeHead(200, headers);
      createReadStream(file)
        .on('error', () => response.destroy())
        .pipe(response);
      return;
    }
    this.pauses.delete(path);
    const body = await readFile(file);
    response.writeHead(200, headers);
    response.write(body.subarray(0, pause.bytes), () => pause.reached());
    await pause.resumed;
    if (!response.destroyed) response.end(body.subarray(pause.bytes));
  }
}
