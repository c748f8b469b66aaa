import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One answer that went through the relay, with what the observer saw before passing it on. */
export interface RelayedAnswer<T> {
  path: string;
  status: number;
  observed: T;
}

/**
 * An HTTP relay on loopback in front of a server (put in GOPROXY instead of it): every answer
 * of the server is held until `observe(path, status)` has resolved, then passed on. What the
 * observer reads therefore happened before the client got the answer (a job's attempts, say).
 */
export class ObservingRelay<T> {
  readonly answers: Array<RelayedAnswer<T>> = [];
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server) {}

  static async start<T>(
    target: string,
    observe: (path: string, status: number) => Promise<T>,
  ): Promise<ObservingRelay<T>> {
    const server = createServer();
    const relay = new ObservingRelay<T>(server);
    server.on('request', (incoming, outgoing) => {
      const path = incoming.url ?? '/';
      const forwarded = request(
        `${target}${path}`,
        { method: incoming.method, headers: { ...incoming.headers, host: new URL(target).host } },
        (answer) => {
          const status = answer.statusCode ?? 502;
          observe(path, status).then(
            (observed) => {
              relay.answers.push({ path, status, observed });
              outgoing.writeHead(status, answer.headers);
              answer.pipe(outgoing);
            },
            (error: unknown) => outgoing.destroy(error instanceof Error ? error : new Error(String(error))),
          );
        },
      );
      forwarded.on('error', (error) => outgoing.destroy(error));
      incoming.pipe(forwarded);
    });
    server.on('connection', (socket: Socket) => {
      relay.sockets.add(socket);
      socket.once('close', () => relay.sockets.delete(socket));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return relay;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
