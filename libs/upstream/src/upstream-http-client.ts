import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { pipeline, type Readable, type Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { BodyWatch } from './body-watch';
import { HttpFailure } from './http-failure';

export interface UpstreamHttpClientOptions {
  /**
   * Sent with every request. `authorization`, `cookie` and `proxy-authorization` are dropped
   * once a redirect leaves the origin of the request before it.
   */
  headers?: Record<string, string>;
  /** Redirects followed per request; one more fails with `redirects`. @default 10 */
  maxRedirects?: number;
  /** Connections open at once to one host (more requests wait for one). @default 32 */
  maxSocketsPerHost?: number;
  /**
   * An idle kept-alive connection is closed after this long, before the server's own idle
   * timeout is likely to close it under a request. @default 4000
   */
  idleSocketMs?: number;
}

export interface HttpGetOptions {
  /** Ends the request and its body at once; its reason is the error. */
  signal: AbortSignal;
  /**
   * The response headers must arrive within this long after the connection is ready, and the
   * body may not fall silent for longer.
   */
  silenceMs: number;
}

export interface UpstreamResponse {
  status: number;
  /** The reason phrase as the upstream sent it (hostile text: detail only). */
  statusText: string;
  headers: IncomingHttpHeaders;
  /** Where the answer came from, after redirects. */
  url: URL;
  /**
   * The decoded body. The caller must read it to the end or destroy it; either way the
   * connection is returned or closed.
   */
  body: Readable;
  /** The body's size as declared by Content-Length, when it was not encoded. */
  declaredLength: number | undefined;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];
/** Errors of a kept-alive connection the server closed just as we reused it. */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * GET over node:http/node:https with keep-alive agents (bounded connections per host),
 * redirects, gzip/deflate/br decoding and silence limits. Chosen over undici 7, whose issue
 * #5360 kills the process when a paused body's connection closes (an HTTP/1.0 upstream); every
 * response body here is either read to its end or destroyed, on every path.
 */
export class UpstreamHttpClient {
  private readonly headers: Record<string, string>;
  private readonly maxRedirects: number;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private closed = false;

  constructor(options: UpstreamHttpClientOptions = {}) {
    this.headers = { 'accept-encoding': 'gzip, deflate', ...options.headers };
    this.maxRedirects = options.maxRedirects ?? 10;
    const agentOptions = {
      keepAlive: true,
      maxSockets: options.maxSocketsPerHost ?? 32,
      timeout: options.idleSocketMs ?? 4_000,
      scheduling: 'lifo' as const,
    };
    this.httpAgent = new http.Agent(agentOptions);
    this.httpsAgent = new https.Agent(agentOptions);
  }

  /** GET `url`, following redirects; rejects with `HttpFailure` or with the signal's reason. */
  async get(url: URL, options: HttpGetOptions): Promise<UpstreamResponse> {
    let current = url;
    let headers = { ...this.headers };
    for (let redirects = 0; ; redirects++) {
      const response = await this.send(current, headers, options);
      const location = response.headers.location;
      if (!REDIRECTS.has(response.statusCode ?? 0) || location === undefined) {
        return this.answer(current, response, options);
      }
      // Nothing in a redirect's body is wanted; destroying it costs one connection.
      response.destroy();
      if (redirects >= this.maxRedirects) {
        throw new HttpFailure(
          'redirects',
          'too many redirects',
          // Without its query, like every URL in a detail: a redirect may quote credentials there.
          `more than ${this.maxRedirects} redirects, the last to ${location.replace(/[?#].*$/s, '')}`,
        );
      }
      const next = resolveLocation(location, current);
      if (next.origin !== current.origin) headers = withoutCredentials(headers);
      current = next;
    }
  }

  /** Closes every connection, in use or idle; requests after this fail with `closed`. */
  close(): void {
    this.closed = true;
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /**
   * One request, resolved with the response once its headers are in. A kept-alive connection
   * the server closed just before we reused it is retried once on a new one (the request is a
   * GET and nothing of it was answered).
   */
  private async send(
    url: URL,
    headers: Record<string, string>,
    options: HttpGetOptions,
  ): Promise<IncomingMessage> {
    try {
      return await this.sendOnce(url, headers, options);
    } catch (error) {
      if (!(error instanceof StaleSocket)) throw error;
      return this.sendOnce(url, headers, options, false);
    }
  }

  private sendOnce(
    url: URL,
    headers: Record<string, string>,
    options: HttpGetOptions,
    retryStale = true,
  ): Promise<IncomingMessage> {
    const { signal, silenceMs } = options;
    if (this.closed) return Promise.reject(new HttpFailure('closed', 'the upstream client is closed'));
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const secure = url.protocol === 'https:';
      const request = (secure ? https : http).request({
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: url.port,
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers,
        agent: secure ? this.httpsAgent : this.httpAgent,
      });
      let headersTimer: NodeJS.Timeout | undefined;
      const onAbort = (): void => {
        request.destroy(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
      };
      const settle = (): void => {
        clearTimeout(headersTimer);
        signal.removeEventListener('abort', onAbort);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      request.once('socket', () => {
        headersTimer = setTimeout(() => {
          request.destroy(
            new HttpFailure(
              'timeout',
              `no answer within ${silenceMs} ms`,
              `no complete response headers within ${silenceMs} ms`,
            ),
          );
        }, silenceMs);
      });
      request.once('response', (response) => {
        settle();
        resolve(response);
      });
      // Never removed: after the response, errors of the request (a destroy, a late socket
      // error) surface through the response body; an 'error' with no listener would crash.
      request.on('error', (error) => {
        settle();
        if (retryStale && request.reusedSocket && STALE_SOCKET_CODES.has(errorCode(error) ?? '')) {
          reject(new StaleSocket());
          return;
        }
        reject(signal.aborted && error === signal.reason ? error : asHttpFailure(error));
      });
      request.end();
    });
  }

  /** Wraps a final response: its body watched for silence and truncation, then decoded. */
  private answer(url: URL, response: IncomingMessage, options: HttpGetOptions): UpstreamResponse {
    const encoding = (response.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    const decoder = decoderFor(encoding);
    if (decoder === null) {
      response.destroy();
      throw new HttpFailure('encoding', 'unsupported content encoding', `Content-Encoding: ${encoding}`);
    }
    const watch = new BodyWatch(response, options.silenceMs);
    const onFailure = (): void => undefined;
    const body: Readable = decoder
      ? pipeline(response, watch, decoder, onFailure)
      : pipeline(response, watch, onFailure);
    // A body nobody reads any more (its reader stopped at an error) must not crash the
    // process when it fails later; readers get the error through their own listeners.
    body.on('error', () => undefined);
    const { signal } = options;
    const onAbort = (): void => {
      body.destroy(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
    };
    if (signal.aborted) onAbort();
    else {
      signal.addEventListener('abort', onAbort, { once: true });
      body.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    const declared = Number(response.headers['content-length']);
    return {
      status: response.statusCode ?? 0,
      statusText: response.statusMessage ?? '',
      headers: response.headers,
      url,
      body,
      declaredLength: decoder === undefined && Number.isFinite(declared) ? declared : undefined,
    };
  }
}

/** Marks a failure on a reused connection that is worth one retry. */
class StaleSocket extends Error {}

/** `undefined` for identity, `null` for an encoding we cannot decode. */
function decoderFor(encoding: string): Transform | undefined | null {
  switch (encoding) {
    case '':
    case 'identity':
      return undefined;
    case 'gzip':
    case 'x-gzip':
      return createGunzip();
    case 'deflate':
      return createInflate();
    case 'br':
      return createBrotliDecompress();
    default:
      return null;
  }
}

function resolveLocation(location: string, base: URL): URL {
  let next: URL;
  try {
    next = new URL(location, base);
  } catch (error) {
    throw new HttpFailure('redirects', 'a redirect to an invalid location', `Location: ${location}`, {
      cause: error,
    });
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw new HttpFailure('redirects', 'a redirect that is not http or https', `Location: ${location}`);
  }
  // Credentials go in headers only; userinfo in a Location is not followed as authentication.
  next.username = '';
  next.password = '';
  return next;
}

function withoutCredentials(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([key]) => !CREDENTIAL_HEADERS.includes(key)));
}

/**
 * What a failed request or body read means on the wire. A body fails with the signal's reason
 * (the caller's to explain), an `HttpFailure`, or an error of Node's parser, socket or zlib,
 * which this names.
 */
export function asHttpFailure(error: unknown): HttpFailure {
  if (error instanceof HttpFailure) return error;
  const code = errorCode(error) ?? '';
  const options = { cause: error };
  if (code.startsWith('Z_') || code.startsWith('ERR_ZLIB') || code === 'ERR_BROTLI_DECOMPRESSION_FAILED') {
    return new HttpFailure('encoding', 'the compressed answer does not decode', describe(error), options);
  }
  // Node's parser: a body that ended before its Content-Length or last chunk.
  const aborted = code === 'ECONNRESET' && error instanceof Error && error.message === 'aborted';
  if (aborted || code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return new HttpFailure('truncated', 'the answer was cut short', describe(error), options);
  }
  return new HttpFailure('transport', transportMessage(error), describe(error), options);
}

const TRANSPORT_MESSAGES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  ECONNABORTED: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
};

/** A short phrase for a client; never the address (it is part of the upstream's URL). */
function transportMessage(error: unknown): string {
  const code = errorCode(error) ?? '';
  const known = TRANSPORT_MESSAGES[code];
  if (known !== undefined) return known;
  if (code.startsWith('HPE_')) return 'invalid HTTP response';
  if (code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('ERR_SSL')) return 'TLS failure';
  if (error instanceof AggregateError) {
    const inner = error.errors.map((e: unknown) => errorCode(e)).find((c) => c !== undefined);
    if (inner !== undefined) return TRANSPORT_MESSAGES[inner] ?? 'connection failed';
  }
  return 'connection failed';
}

export function errorCode(error: unknown): string | undefined {
  const code =
    typeof error === 'object' && error !== null ? (error as Record<string, unknown>)['code'] : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** Node reports a refused connection to every address of a host as an AggregateError with no message. */
export function describe(error: unknown): string {
  if (error instanceof AggregateError && error.message === '') {
    const inner = error.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e)));
    return inner.join('; ') || (errorCode(error) ?? 'connection failed');
  }
  if (error instanceof Error) return error.message || (errorCode(error) ?? error.name);
  return String(error);
}
