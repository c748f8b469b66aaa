import { Agent, request, type RequestOptions } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { abortedByDeadline, errors, type ModuleError } from '@modproxy/errors';
import { withDeadline } from '../call-deadline';
import { parseGoImportMeta, type GoImportMeta } from './go-import-meta';

export interface GoGetDiscoveryOptions {
  /** Deadline of one discovery, redirects included. @default 30000 */
  timeoutMs?: number;
  /** The page is read this far at most (the head is at its start). @default 1 MiB */
  maxBytes?: number;
  /** Redirects followed (to https only, as the go command does). @default 10 */
  maxRedirects?: number;
  /** The HTTPS agent (tests connect it to a loopback server). @default a new keep-alive-less agent */
  agent?: Agent;
  /** @default 'modproxy' */
  userAgent?: string;
}

export interface DiscoveryCallOptions {
  signal?: AbortSignal;
}

const OP = 'upstream.vcs.discover';

/**
 * The go command's `?go-get=1` discovery of where an import path's code lives: an HTTPS GET
 * of `https://<path>?go-get=1`, its go-import meta tags read from the page's head. Only
 * HTTPS (no insecure fallback), within a deadline, and never more than `maxBytes` read.
 */
export class GoGetDiscovery {
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly maxRedirects: number;
  private readonly agent: Agent;
  private readonly userAgent: string;

  constructor(options: GoGetDiscoveryOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxBytes = options.maxBytes ?? 1024 * 1024;
    this.maxRedirects = options.maxRedirects ?? 10;
    this.agent = options.agent ?? new Agent({ keepAlive: false });
    this.userAgent = options.userAgent ?? 'modproxy';
  }

  /**
   * The go-import entries the page for `path` declares. `not-found` when the page has none and
   * answered 404 or 410; `bad-gateway` for a page without any otherwise, or a failed request.
   */
  async lookup(path: string, options: DiscoveryCallOptions = {}): Promise<GoImportMeta[]> {
    const signal = withDeadline(options.signal, this.timeoutMs);
    let url = new URL(`https://${path}?go-get=1`);
    for (let redirects = 0; ; redirects++) {
      const page = await this.get(url, path, signal);
      if (page.location !== undefined && page.status >= 300 && page.status < 400) {
        if (redirects >= this.maxRedirects)
          throw errors.badGateway(OP, `go-get discovery for ${path}: too many redirects`, { module: path });
        const next = new URL(page.location, url);
        if (next.protocol !== 'https:')
          throw errors.badGateway(OP, `go-get discovery for ${path}: redirected to a non-https URL`, {
            module: path,
            detail: `redirect to ${next.protocol}//${next.host}`,
          });
        url = next;
        continue;
      }
      const entries = parseGoImportMeta(page.body);
      if (entries.length > 0) return entries;
      if (page.status === 404 || page.status === 410)
        throw errors.notFound(OP, `${path}: no such import path (go-get discovery answered ${page.status})`, {
          module: path,
        });
      throw errors.badGateway(
        OP,
        `${path}: go-get discovery found no go-import meta tag (status ${page.status})`,
        {
          module: path,
        },
      );
    }
  }

  /** Closes idle connections. */
  close(): void {
    this.agent.destroy();
  }

  private get(
    url: URL,
    path: string,
    signal: AbortSignal,
  ): Promise<{ status: number; body: string; location?: string }> {
    const options: RequestOptions = {
      agent: this.agent,
      method: 'GET',
      headers: { 'user-agent': this.userAgent, accept: 'text/html' },
      signal,
    };
    return new Promise((resolve, reject) => {
      const fail = (error: unknown): void => reject(this.failure(error, path, signal));
      const outgoing = request(url, options, (response: IncomingMessage) => {
        const status = response.statusCode ?? 0;
        const location = response.headers.location;
        if (location !== undefined && status >= 300 && status < 400) {
          response.resume();
          resolve({ status, body: '', location });
          return;
        }
        const chunks: Buffer[] = [];
        let bytes = 0;
        let done = false;
        const finish = (): void => {
          if (done) return;
          done = true;
          resolve({ status, body: Buffer.concat(chunks).toString('utf8') });
          // The head is what counts; the rest is never read.
          response.destroy();
        };
        response.on('data', (chunk: Buffer) => {
          if (done) return;
          const room = this.maxBytes - bytes;
          chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
          bytes += Math.min(chunk.length, room);
          if (bytes >= this.maxBytes || /<\/head\s*>|<body\b/i.test(chunk.toString('latin1'))) finish();
        });
        response.once('end', finish);
        response.once('error', (error) => {
          if (!done) fail(error);
        });
      });
      outgoing.once('error', fail);
      outgoing.end();
    });
  }

  private failure(error: unknown, path: string, signal: AbortSignal): ModuleError {
    const context = { module: path };
    if (signal.aborted) {
      return abortedByDeadline(signal)
        ? errors.timeout(OP, `go-get discovery for ${path} timed out`, context)
        : errors.cancelled(OP, 'the caller gave up', context);
    }
    return errors.badGateway(OP, `go-get discovery for ${path} failed`, {
      ...context,
      cause: error,
      detail: `go-get discovery for ${path}: ${(error as Error).message}`,
    });
  }
}
