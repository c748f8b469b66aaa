import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { listenHttp } from '@modproxy/http';

/** How the upstream answers every request under `/example.com/<behaviour>/`. */
export const UPSTREAM_BEHAVIOURS = [
  'notfound',
  'gone',
  'fail500',
  'fail503',
  'stall',
  'html200',
  'redirect',
] as const;

export interface EchoedRequest {
  path: string;
  authorization: string | undefined;
}

export interface EchoingUpstream {
  /** `http://127.0.0.1:<port>`, without userinfo. */
  url: string;
  port: number;
  /** Every request received, with the credentials it carried. */
  requests: EchoedRequest[];
  close(): Promise<void>;
}

/**
 * A GOPROXY upstream that fails in every way and, as a careless debugging page would, quotes
 * back the request's URL and its Authorization header in every answer: whatever it sends
 * must never reach a client of ours or a log line unredacted. Anything outside
 * {@link UPSTREAM_BEHAVIOURS} is a 404 HTML page, like a static file server's.
 */
export async function startEchoingUpstream(): Promise<EchoingUpstream> {
  const requests: EchoedRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((request, response) => {
    requests.push({ path: request.url ?? '', authorization: request.headers.authorization });
    answer(request, response, port);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const url = await listenHttp(server, 0, '127.0.0.1');
  const port = Number(new URL(url).port);
  return {
    url,
    port,
    requests,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

function answer(request: IncomingMessage, response: ServerResponse, port: number): void {
  const behaviour = /^\/example\.com\/([^/]+)\//.exec(request.url ?? '')?.[1];
  const echo = `GET http://127.0.0.1:${port}${request.url ?? ''}\nAuthorization: ${request.headers.authorization ?? '(none)'}`;
  const page = (title: string) =>
    `<!DOCTYPE HTML>\n<html><head><title>${title}</title></head><body><h1>${title}</h1><pre>${echo}</pre></body></html>\n`;
  switch (behaviour) {
    case 'gone':
      return send(response, 410, 'text/plain', `gone; you sent\n${echo}\n`);
    case 'fail500':
      return send(response, 500, 'text/html', page('500 Internal Server Error'));
    case 'fail503':
      response.setHeader('Retry-After', '1');
      return send(response, 503, 'text/plain', `overloaded; you sent\n${echo}\n`);
    case 'html200':
      return send(response, 200, 'text/html', page('Welcome'));
    case 'redirect': {
      // A loop whose Location carries the credentials it was sent.
      const auth = encodeURIComponent(request.headers.authorization ?? '');
      const path = (request.url ?? '/').split('?')[0] ?? '/';
      response.setHeader('Location', `http://127.0.0.1:${port}${path}?auth=${auth}`);
      return send(response, 302, 'text/plain', `moved; you sent\n${echo}\n`);
    }
    case 'stall': {
      // Headers and the start of a body, then silence until the caller gives up.
      const zip = request.url?.endsWith('.zip') ?? false;
      response.writeHead(200, {
        'Content-Type': zip ? 'application/zip' : 'application/json',
        'Content-Length': '100000',
      });
      response.write(zip ? 'PK\u0003\u0004' : `{"Version":"${echo.replace(/\n/g, ' ')}`);
      return;
    }
    default:
      return send(response, 404, 'text/html', page('404 File not found'));
  }
}

function send(response: ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, { 'Content-Type': `${type}; charset=utf-8` });
  response.end(body);
}
