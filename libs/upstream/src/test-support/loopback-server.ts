import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

export type RouteHandler = (request: IncomingMessage, response: ServerResponse) => void | Promise<void>;

export interface RecordedRequest {
  method: string;
  /** The raw request path, as the upstream client escaped it. */
  path: string;
  headers: IncomingHttpHeaders;
}

/**
 * A real HTTP server on 127.0.0.1 (port 0) for tests: exact-path routes, 404 for anything
 * else, and a record of every request so tests can count what reached it.
 */
export class LoopbackServer {
  readonly requests: RecordedRequest[] = [];
  private readonly routes = new Map<string, RouteHandler>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<LoopbackServer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const self = new LoopbackServer(server, `http://127.0.0.1:${port}`);
    server.on(
      'request',
      (request: IncomingMessage, response: ServerResponse) => void self.handle(request, response),
    );
    return self;
  }

  /** Serves `path` (exact, escaped form) with `handler`, replacing an earlier route. */
  route(path: string, handler: RouteHandler): this {
    this.routes.set(path, handler);
    return this;
  }

  /** Requests received whose path starts with `prefix` (all of them without one). */
  count(prefix = ''): number {
    return this.requests.filter((r) => r.path.startsWith(prefix)).length;
  }

  /** Stops listening and drops every open connection, including held or kept-alive ones. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = request.url ?? '/';
    this.requests.push({ method: request.method ?? 'GET', path, headers: request.headers });
    const handler = this.routes.get(path);
    try {
      if (handler) await handler(request, response);
      else reply(404, `not found: ${path}`)(request, response);
    } catch {
      response.destroy();
    }
  }
}

/** A fixed answer. */
export function reply(
  status: number,
  body: string | Buffer,
  headers: Record<string, string> = {},
): RouteHandler {
  return (_request, response) => {
    response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
    response.end(body);
  };
}

export function json(value: unknown): RouteHandler {
  return reply(200, JSON.stringify(value), { 'content-type': 'application/json' });
}

/** Never answers: the client must give up on its own (the server's close() drops it). */
export function hold(): RouteHandler {
  return () => undefined;
}

export function redirect(location: string, status = 302): RouteHandler {
  return reply(status, '', { location });
}
