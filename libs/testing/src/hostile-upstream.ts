import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join, normalize, sep } from 'node:path';
import {
  type GoproxyFileKind,
  HOSTILE_BEHAVIOURS,
  type HostileAnswer,
  type HostileAnswerSettings,
  type HostileBehaviour,
  hostileAnswer,
} from './hostile-behaviours';

export interface HostileUpstreamOptions {
  /** A directory in the GOPROXY layout (see `exportFixturesAsGoproxy`). */
  dir: string;
  /** How requests without a behaviour in their path are answered. @default 'ok' */
  behaviour?: HostileBehaviour;
  /** Body size of `oversized-404` and `oversized-500`. @default 16 MiB */
  oversizedBytes?: number;
  /** Lines of the `huge-list` list. @default 100000 */
  hugeListLines?: number;
  /** What `status-429` and `status-503` ask a client to wait. @default 120 */
  retryAfterSeconds?: number;
  /** How often `stall-headers` sends one more header line. @default 250 */
  trickleMs?: number;
}

/** Where the behaviour of one request is named: `/hostile/<behaviour>[+<kind>…]/<GOPROXY path>`. */
const PREFIX = /^\/hostile\/([a-z0-9-]+)((?:\+[a-z]+)*)(\/.*)$/;
const MAX_HEAD_BYTES = 64 * 1024;

const CONTENT_TYPES: Record<GoproxyFileKind, string> = {
  info: 'application/json',
  mod: 'text/plain; charset=utf-8',
  zip: 'application/zip',
  list: 'text/plain; charset=utf-8',
  latest: 'application/json',
};

/**
 * A GOPROXY on 127.0.0.1 that misbehaves on purpose, built on raw sockets so it can lie
 * (about lengths, encodings, protocol versions) and stall where node:http would not let it.
 * It serves a GOPROXY tree; how it answers is chosen for the whole server
 * ({@link setBehaviour}) or per request, through the base URL ({@link urlFor}), so one server
 * can sit behind several clients that each see one behaviour. It counts requests and closes
 * every connection on {@link close}.
 */
export class HostileUpstream {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly counts = new Map<string, number>();
  private readonly behaviourCounts = new Map<HostileBehaviour, number>();
  private readonly settings: HostileAnswerSettings;
  private behaviour: HostileBehaviour;
  private streamedBytes = 0;
  private peak = 0;
  private ended = 0;
  private port = 0;

  private constructor(private readonly options: HostileUpstreamOptions) {
    this.behaviour = options.behaviour ?? 'ok';
    this.settings = {
      oversizedBytes: options.oversizedBytes ?? 16 * 1024 * 1024,
      hugeListLines: options.hugeListLines ?? 100_000,
      retryAfterSeconds: options.retryAfterSeconds ?? 120,
      trickleMs: options.trickleMs ?? 250,
    };
    this.server = createServer((socket) => this.accept(socket));
  }

  static async start(options: HostileUpstreamOptions): Promise<HostileUpstream> {
    const upstream = new HostileUpstream(options);
    upstream.server.listen(0, '127.0.0.1');
    await once(upstream.server, 'listening');
    const address = upstream.server.address();
    if (typeof address === 'object' && address !== null) upstream.port = address.port;
    return upstream;
  }

  /** The base URL for the server's own behaviour. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * A base URL whose requests get `behaviour`, whatever the server's; with `only`, just the
   * requests for those kinds of file do (the others are served `ok`).
   */
  urlFor(behaviour: HostileBehaviour, only: readonly GoproxyFileKind[] = []): string {
    return `${this.url}/hostile/${behaviour}${only.map((kind) => `+${kind}`).join('')}`;
  }

  setBehaviour(behaviour: HostileBehaviour): void {
    this.behaviour = behaviour;
  }

  /** Requests for a GOPROXY path (percent-decoded, without the behaviour prefix); all without one. */
  requestCount(path?: string): number {
    if (path !== undefined) return this.counts.get(path) ?? 0;
    let total = 0;
    for (const count of this.counts.values()) total += count;
    return total;
  }

  /** Requests answered with `behaviour`. */
  requestsWith(behaviour: HostileBehaviour): number {
    return this.behaviourCounts.get(behaviour) ?? 0;
  }

  /** Bytes of oversized bodies written so far: how much of them clients made the server send. */
  get oversizedBytesSent(): number {
    return this.streamedBytes;
  }

  /** Connections open now. */
  get connections(): number {
    return this.sockets.size;
  }

  /**
   * Connections this server has ended: everything it wrote handed to the network and its FIN
   * sent (whether the client has read it yet or not).
   */
  get endedConnections(): number {
    return this.ended;
  }

  /** The most connections that were ever open at once. */
  get peakConnections(): number {
    return this.peak;
  }

  /** Stops listening, ends every stall and trickle, and destroys every connection. */
  async close(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const sockets = [...this.sockets].map((socket) => once(socket, 'close'));
    for (const socket of this.sockets) socket.destroy();
    await Promise.all([closed, ...sockets]);
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    this.peak = Math.max(this.peak, this.sockets.size);
    socket.once('close', () => this.sockets.delete(socket));
    socket.once('finish', () => this.ended++);
    // A client that resets the connection is part of the game, not a failure of the server.
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    let busy = false;
    // Set once an answer leaves the connection closing, stalled or trickling: no more requests.
    let finished = false;
    const next = async (): Promise<void> => {
      if (busy || finished) return;
      busy = true;
      try {
        for (;;) {
          const end = buffered.indexOf('\r\n\r\n');
          if (end < 0) {
            if (buffered.length > MAX_HEAD_BYTES) socket.destroy();
            return;
          }
          const head = buffered.subarray(0, end).toString('latin1');
          buffered = buffered.subarray(end + 4);
          const keepOpen = await this.respond(socket, head);
          if (!keepOpen || socket.destroyed) {
            finished = true;
            return;
          }
        }
      } finally {
        busy = false;
      }
    };
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      void next().catch(() => socket.destroy());
    });
  }

  /** Answers one request; resolves with whether the connection takes another. */
  private async respond(socket: Socket, head: string): Promise<boolean> {
    const [method = '', target = '/'] = (head.split('\r\n')[0] ?? '').split(' ');
    const parsed = PREFIX.exec(target.split('?')[0] ?? '/');
    const named = parsed?.[1] as HostileBehaviour | undefined;
    const only = (parsed?.[2] ?? '').split('+').filter((kind) => kind !== '') as GoproxyFileKind[];
    const path = decodePath(parsed?.[3] ?? target.split('?')[0] ?? '/');
    const kind = kindOf(path);
    let behaviour = named !== undefined && HOSTILE_BEHAVIOURS.includes(named) ? named : this.behaviour;
    if (only.length > 0 && (kind === undefined || !only.includes(kind))) behaviour = 'ok';
    this.counts.set(path, (this.counts.get(path) ?? 0) + 1);
    this.behaviourCounts.set(behaviour, (this.behaviourCounts.get(behaviour) ?? 0) + 1);
    const file = method === 'GET' ? await this.readFile(path) : undefined;
    const answer = hostileAnswer(
      behaviour,
      { target, kind, file, contentType: kind ? CONTENT_TYPES[kind] : 'application/octet-stream' },
      this.settings,
    );
    return this.write(socket, answer);
  }

  private async write(socket: Socket, answer: HostileAnswer): Promise<boolean> {
    switch (answer.type) {
      case 'full':
        socket.write(answer.head);
        if (answer.close) {
          socket.end(answer.body);
          return false;
        }
        return writeAll(socket, answer.body);
      case 'partial':
        socket.write(answer.head);
        if (answer.then === 'close') socket.end(answer.body);
        else socket.write(answer.body);
        return false;
      case 'stream': {
        socket.write(answer.head);
        let left = answer.bytes;
        while (left > 0 && !socket.destroyed) {
          const chunk = answer.filler.subarray(0, Math.min(left, answer.filler.length));
          left -= chunk.length;
          this.streamedBytes += chunk.length;
          if (!(await writeAll(socket, chunk))) return false;
        }
        return !socket.destroyed;
      }
      case 'trickle-headers': {
        socket.write(answer.head);
        let line = 0;
        const timer = setInterval(() => {
          if (socket.destroyed) return;
          socket.write(`X-Still-Coming-${line++}: .\r\n`);
        }, answer.everyMs);
        this.timers.add(timer);
        socket.once('close', () => {
          clearInterval(timer);
          this.timers.delete(timer);
        });
        return false;
      }
    }
  }

  private async readFile(path: string): Promise<Buffer | undefined> {
    const relative = normalize(path).replace(/^[/\\]+/, '');
    if (relative === '' || relative.split(sep).includes('..')) return undefined;
    try {
      return await readFile(join(this.options.dir, relative));
    } catch {
      return undefined;
    }
  }
}

/** Writes with backpressure; resolves false when the connection closed first. */
async function writeAll(socket: Socket, bytes: Buffer): Promise<boolean> {
  if (socket.destroyed) return false;
  if (bytes.length === 0 || socket.write(bytes)) return true;
  return new Promise((resolve) => {
    const done = (drained: boolean) => () => {
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      resolve(drained);
    };
    const onDrain = done(true);
    const onClose = done(false);
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

function kindOf(path: string): GoproxyFileKind | undefined {
  if (path.endsWith('/@v/list')) return 'list';
  if (path.endsWith('/@latest')) return 'latest';
  const extension = /\.(info|mod|zip)$/.exec(path)?.[1];
  return extension as GoproxyFileKind | undefined;
}

/** Percent-decodes a URL path (the go command sends `!` as `%21`); a malformed one is kept as is. */
function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** Starts a {@link HostileUpstream} on a free loopback port. */
export function startHostileUpstream(options: HostileUpstreamOptions): Promise<HostileUpstream> {
  return HostileUpstream.start(options);
}
