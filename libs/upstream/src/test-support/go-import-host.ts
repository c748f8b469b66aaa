import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { writeTestCertificates } from '@modproxy/testing';

/** How the host answers a `?go-get=1` request for one path. */
export interface GoImportAnswer {
  status: number;
  /** Default: an HTML page with no go-import meta tag. */
  body?: string;
}

export interface GoImportHostOptions {
  /** The host names it plays, e.g. `example.test` (the certificate is made for them). */
  hosts: readonly string[];
  /** Where the test CA and certificate are written. */
  dir: string;
}

/**
 * Source hosts for the go command's import path discovery (`https://<path>?go-get=1`), played on
 * loopback: the go command reaches them through this HTTPS proxy (`HTTPS_PROXY`), which tunnels
 * CONNECTs for the named hosts into a TLS server with a certificate from a test CA
 * (`SSL_CERT_FILE`), so the go command sends no DNS query and talks HTTPS as it would to a real
 * host. Any other host's CONNECT is refused (502).
 */
export class GoImportHost {
  /** Request paths (with their query) the hosts were asked for, in order. */
  readonly requests: string[] = [];
  /** Every CONNECT target (`host:port`) the proxy was asked for, played or refused. */
  readonly connects: string[] = [];
  private readonly answers = new Map<string, GoImportAnswer>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly proxy: Server,
    private readonly tls: HttpsServer,
    private readonly hosts: ReadonlySet<string>,
    private readonly caFile: string,
  ) {}

  static async start(options: GoImportHostOptions): Promise<GoImportHost> {
    const certificates = await writeTestCertificates(options.dir, { dnsNames: options.hosts });
    const tls = createHttpsServer({ cert: certificates.server.cert, key: certificates.server.key });
    const proxy = createHttpServer((_request, response) => {
      // Plain-HTTP proxying is not offered: the go command must come over HTTPS.
      response.writeHead(502).end();
    });
    const host = new GoImportHost(proxy, tls, new Set(options.hosts), certificates.caFile);
    tls.on('request', (request: IncomingMessage, response) => {
      const path = request.url ?? '/';
      host.requests.push(path);
      const answer = host.answers.get(path.split('?', 1)[0] ?? '/') ?? { status: 404, body: 'not found\n' };
      response.writeHead(answer.status, { 'content-type': 'text/html; charset=utf-8' });
      response.end(
        answer.body ?? '<!DOCTYPE html><html><head><title>a page</title></head><body></body></html>\n',
      );
    });
    proxy.on('connect', (request: IncomingMessage, socket: Socket, head: Buffer) =>
      host.tunnel(request, socket, head),
    );
    proxy.on('connection', (socket: Socket) => host.track(socket));
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    return host;
  }

  /** The proxy's URL, for `HTTPS_PROXY`. */
  get url(): string {
    return `http://127.0.0.1:${(this.proxy.address() as AddressInfo).port}`;
  }

  /** What the go command needs to reach the hosts: the proxy and the CA. */
  get env(): Record<string, string> {
    return { HTTPS_PROXY: this.url, HTTP_PROXY: this.url, SSL_CERT_FILE: this.caFile };
  }

  /** Answers `?go-get=1` requests for `path` (e.g. `/` for the bare host, `/team`) with `answer`; others get 404. */
  answer(path: string, answer: GoImportAnswer): this {
    this.answers.set(path, answer);
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.proxy.close(() => resolve()));
    this.tls.close();
  }

  private tunnel(request: IncomingMessage, socket: Socket, head: Buffer): void {
    this.connects.push(request.url ?? '');
    const [name, port] = (request.url ?? '').split(':');
    if (!this.hosts.has(name ?? '') || port !== '443') {
      socket.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      return;
    }
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);
    this.tls.emit('connection', socket);
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }
}
