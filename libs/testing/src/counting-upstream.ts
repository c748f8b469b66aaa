import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** One request as the upstream saw it. */
export interface CountedRequest {
  path: string;
  /** What the request is about: `module@version` for .info/.mod/.zip, the module for list/latest. */
  subject: string;
  /** `Date.now()` when the request arrived and when its answer was finished. */
  arrivedAt: number;
  answeredAt?: number;
  status?: number;
}

export interface CountingAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** The host's own latency: the answer is sent this long after the request arrived. */
  delayMs?: number;
}

export type CountingAnswerer = (path: string, request: CountedRequest) => CountingAnswer;

export interface CountingUpstreamOptions {
  /** How each request is answered. @default {@link syntheticGoproxyAnswer} with its defaults */
  answer?: CountingAnswerer;
}

/**
 * A loopback GOPROXY that records every request (arrival and answer times) and the most
 * requests, and the most distinct subjects (module versions), it had in flight at once: what a
 * source host sees of our politeness.
 */
export class CountingUpstream {
  readonly requests: CountedRequest[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly open = new Map<string, number>();
  private answerer: CountingAnswerer;
  private inFlightNow = 0;
  private maxRequests = 0;
  private maxSubjects = 0;
  private port = 0;

  private constructor(options: CountingUpstreamOptions) {
    this.answerer = options.answer ?? ((path) => syntheticGoproxyAnswer(path));
    this.server = createServer((request, response) => this.handle(request, response));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  static async start(options: CountingUpstreamOptions = {}): Promise<CountingUpstream> {
    const upstream = new CountingUpstream(options);
    upstream.server.listen(0, '127.0.0.1');
    await once(upstream.server, 'listening');
    const address = upstream.server.address();
    upstream.port = typeof address === 'object' && address !== null ? address.port : 0;
    return upstream;
  }

  /** `http://127.0.0.1:<port>`; its host (`127.0.0.1:<port>`) is what per-host limits count. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Requests being answered now. */
  get inFlight(): number {
    return this.inFlightNow;
  }

  /** The most requests in flight at once so far. */
  get maxInFlight(): number {
    return this.maxRequests;
  }

  /**
   * The most distinct subjects in flight at once so far: one fetch of a version is up to two
   * requests at a time (its .mod and .zip), so this counts fetches, not connections.
   */
  get maxSubjectsInFlight(): number {
    return this.maxSubjects;
  }

  /** Changes how requests are answered from now on. */
  setAnswer(answer: CountingAnswerer): void {
    this.answerer = answer;
  }

  /** Forgets what was recorded (the maxima included). */
  reset(): void {
    this.requests.length = 0;
    this.maxRequests = this.inFlightNow;
    this.maxSubjects = this.open.size;
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const path = decodeURIComponent((request.url ?? '/').split('?')[0] ?? '/');
    const counted: CountedRequest = { path, subject: subjectOf(path), arrivedAt: Date.now() };
    this.requests.push(counted);
    this.inFlightNow += 1;
    this.maxRequests = Math.max(this.maxRequests, this.inFlightNow);
    this.open.set(counted.subject, (this.open.get(counted.subject) ?? 0) + 1);
    this.maxSubjects = Math.max(this.maxSubjects, this.open.size);
    let answer: CountingAnswer;
    try {
      answer = this.answerer(path, counted);
    } catch (error) {
      answer = { status: 500, body: `answerer failed: ${(error as Error).message}` };
    }
    const send = (): void => {
      // Counted as answered before the bytes go out: a client that reacts to the answer must
      // never be seen sending its next request "before" this one ended.
      this.finish(counted, answer.status);
      response.writeHead(answer.status, { 'content-type': 'text/plain; charset=utf-8', ...answer.headers });
      response.end(answer.body ?? '');
    };
    if (!answer.delayMs) {
      send();
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      send();
    }, answer.delayMs);
    this.timers.add(timer);
  }

  private finish(counted: CountedRequest, status: number): void {
    counted.answeredAt = Date.now();
    counted.status = status;
    this.inFlightNow -= 1;
    const left = (this.open.get(counted.subject) ?? 1) - 1;
    if (left === 0) this.open.delete(counted.subject);
    else this.open.set(counted.subject, left);
  }
}

export interface SyntheticGoproxyOptions {
  /** What `/@v/list` lists for every module. @default ['v1.0.0'] */
  versions?: readonly string[];
  /** Latency of every answer. @default 0 */
  delayMs?: number;
}

/**
 * Answers any module path like a GOPROXY that has it: list, latest, .info, a go.mod naming the
 * module, and a small body as the zip (enough for an upstream client, not a verified module).
 */
export function syntheticGoproxyAnswer(path: string, options: SyntheticGoproxyOptions = {}): CountingAnswer {
  const delay = options.delayMs ? { delayMs: options.delayMs } : {};
  const versions = options.versions ?? ['v1.0.0'];
  const file = /^\/(.+)\/@v\/([^/]+)\.(info|mod|zip)$/.exec(path);
  const time = '2024-01-01T00:00:00Z';
  if (file) {
    const [, module = '', version = '', kind] = file;
    if (kind === 'info')
      return { status: 200, body: JSON.stringify({ Version: version, Time: time }), ...delay };
    if (kind === 'mod') return { status: 200, body: `module ${module}\n`, ...delay };
    return {
      status: 200,
      headers: { 'content-type': 'application/zip' },
      body: Buffer.alloc(512, 1),
      ...delay,
    };
  }
  if (path.endsWith('/@v/list'))
    return { status: 200, body: versions.map((v) => `${v}\n`).join(''), ...delay };
  if (path.endsWith('/@latest')) {
    const latest = versions.at(-1) ?? 'v1.0.0';
    return { status: 200, body: JSON.stringify({ Version: latest, Time: time }), ...delay };
  }
  return { status: 404, body: 'not found', ...delay };
}

function subjectOf(path: string): string {
  const file = /^\/(.+)\/@v\/([^/]+)\.(info|mod|zip)$/.exec(path);
  if (file) return `${file[1] ?? ''}@${file[2] ?? ''}`;
  return path.replace(/\/@(v\/list|latest)$/, '');
}
