import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpRelayOptions {
  /** Where every accepted connection is relayed to, on 127.0.0.1. */
  targetPort: number;
  /** Delay of every chunk, both directions, from the start. Default: 0. */
  delayMs?: number;
}

export interface TcpRelay {
  /** The relay's own port on 127.0.0.1: point clients here instead of at the target. */
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** From now on every chunk, in both directions, is held this long before it is passed on (0: at once). */
  setDelay(ms: number): void;
  /**
   * Holds every byte, both directions, on every connection, new ones too, until {@link resume}:
   * a database that accepts connections and never answers.
   */
  stall(): void;
  /** Passes on what was held, in order, and everything after it. */
  resume(): void;
  /** Closes the listener and every relayed connection. */
  close(): Promise<void>;
}

interface Held {
  chunk: Buffer;
  due: number;
}

/** One direction of one connection: chunks pass in order, each no earlier than its due time. */
class Lane {
  private readonly held: Held[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly to: Socket,
    private readonly relay: { delayMs: number; stalled: boolean },
  ) {}

  push(chunk: Buffer): void {
    this.held.push({ chunk, due: Date.now() + this.relay.delayMs });
    this.pump();
  }

  pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.relay.stalled || this.to.destroyed) return;
    while (this.held.length > 0) {
      const next = this.held[0] as Held;
      const wait = next.due - Date.now();
      if (wait > 0) {
        this.timer = setTimeout(() => this.pump(), wait);
        return;
      }
      this.held.shift();
      this.to.write(next.chunk);
    }
  }

  /** The source ended: end the other side once everything held has passed. */
  end(): void {
    if (this.held.length === 0 && !this.relay.stalled) this.to.end();
    else setTimeout(() => this.end(), 10).unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

/**
 * A TCP relay on loopback in front of a real server (a database, a storage service) that a
 * test can make slow or stall, because databases are slow under load: the server stays the
 * real one, only the network between gets worse. Bytes are never changed or dropped.
 */
export async function startTcpRelay(options: TcpRelayOptions): Promise<TcpRelay> {
  const state = { delayMs: options.delayMs ?? 0, stalled: false };
  const lanes = new Set<Lane>();
  const sockets = new Set<Socket>();
  let connections = 0;

  const server: Server = createServer((client) => {
    connections += 1;
    const upstream = connect({ host: '127.0.0.1', port: options.targetPort });
    const toUpstream = new Lane(upstream, state);
    const toClient = new Lane(client, state);
    for (const lane of [toUpstream, toClient]) lanes.add(lane);
    for (const socket of [client, upstream]) sockets.add(socket);
    const teardown = () => {
      for (const lane of [toUpstream, toClient]) {
        lane.stop();
        lanes.delete(lane);
      }
      for (const socket of [client, upstream]) {
        sockets.delete(socket);
        socket.destroy();
      }
    };
    client.on('data', (chunk: Buffer) => toUpstream.push(chunk));
    upstream.on('data', (chunk: Buffer) => toClient.push(chunk));
    client.on('end', () => toUpstream.end());
    upstream.on('end', () => toClient.end());
    client.on('error', teardown);
    upstream.on('error', teardown);
    client.on('close', teardown);
    upstream.on('close', teardown);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;

  return {
    port,
    get connections() {
      return connections;
    },
    setDelay(ms) {
      state.delayMs = ms;
    },
    stall() {
      state.stalled = true;
    },
    resume() {
      state.stalled = false;
      for (const lane of lanes) lane.pump();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const lane of lanes) lane.stop();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
