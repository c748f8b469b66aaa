import { deflateSync, gzipSync } from 'node:zlib';

/**
 * How a {@link HostileUpstream} answers. The first five serve the files correctly, in ways
 * real servers do and a client must cope with; the rest are failures a client must survive:
 * - `ok`: HTTP/1.1, Content-Length, keep-alive;
 * - `http10-close`: HTTP/1.0, no Content-Length, the body ends when the connection closes
 *   (what `python3 -m http.server` does);
 * - `connection-close`: HTTP/1.1 with `Connection: close` after every response;
 * - `gzip`, `deflate`: the body compressed whatever the request asked for (`Content-Encoding`);
 * - `oversized-404`, `oversized-500`: that status with a body of `oversizedBytes`;
 * - `short-body`: fewer bytes than the Content-Length, then the connection closes;
 * - `stall-body`: part of the body, then silence with the connection open;
 * - `stall-headers`: a status line and header lines trickling in, never the end of the headers;
 * - `redirect-loop`: a 302 to the same URL, forever;
 * - `status-429`: 429 with `Retry-After` in seconds; `status-503`: 503 with `Retry-After` as an
 *   HTTP-date; `status-500`, `status-404`, `status-410`: that status with a short text body;
 * - `html-info`: `.info` answered 200 with an HTML page (a captive portal, a wrong base URL);
 * - `huge-list`: `/@v/list` with `hugeListLines` versions.
 */
export type HostileBehaviour =
  | 'ok'
  | 'http10-close'
  | 'connection-close'
  | 'gzip'
  | 'deflate'
  | 'oversized-404'
  | 'oversized-500'
  | 'short-body'
  | 'stall-body'
  | 'stall-headers'
  | 'redirect-loop'
  | 'status-429'
  | 'status-500'
  | 'status-503'
  | 'status-404'
  | 'status-410'
  | 'html-info'
  | 'huge-list';

export const HOSTILE_BEHAVIOURS: readonly HostileBehaviour[] = [
  'ok',
  'http10-close',
  'connection-close',
  'gzip',
  'deflate',
  'oversized-404',
  'oversized-500',
  'short-body',
  'stall-body',
  'stall-headers',
  'redirect-loop',
  'status-429',
  'status-500',
  'status-503',
  'status-404',
  'status-410',
  'html-info',
  'huge-list',
];

/** The kinds of GOPROXY request. */
export type GoproxyFileKind = 'info' | 'mod' | 'zip' | 'list' | 'latest';

export interface HostileAnswerSettings {
  oversizedBytes: number;
  hugeListLines: number;
  retryAfterSeconds: number;
  trickleMs: number;
}

/** What the server does on the socket; the head includes the blank line when it is complete. */
export type HostileAnswer =
  | { type: 'full'; head: string; body: Buffer; close: boolean }
  | { type: 'partial'; head: string; body: Buffer; then: 'close' | 'stall' }
  | { type: 'stream'; head: string; bytes: number; filler: Buffer }
  | { type: 'trickle-headers'; head: string; everyMs: number };

export interface HostileRequest {
  /** The request target as received (for a redirect to itself). */
  target: string;
  kind: GoproxyFileKind | undefined;
  /** The file's bytes, `undefined` when the tree has no such file. */
  file: Buffer | undefined;
  contentType: string;
}

const REASONS: Record<number, string> = {
  200: 'OK',
  302: 'Found',
  404: 'Not Found',
  410: 'Gone',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

const TEXT = 'text/plain; charset=utf-8';

/** The answer of `behaviour` to one request. */
export function hostileAnswer(
  behaviour: HostileBehaviour,
  request: HostileRequest,
  settings: HostileAnswerSettings,
): HostileAnswer {
  const { file, contentType } = request;
  const found = (): HostileAnswer =>
    file === undefined ? full(404, TEXT, Buffer.from('not found\n')) : full(200, contentType, file);
  switch (behaviour) {
    case 'ok':
      return found();
    case 'http10-close': {
      const status = file === undefined ? 404 : 200;
      const head = `HTTP/1.0 ${status} ${REASONS[status]}\r\nContent-Type: ${file ? contentType : TEXT}\r\n\r\n`;
      return { type: 'full', head, body: file ?? Buffer.from('not found\n'), close: true };
    }
    case 'connection-close': {
      const answer = found() as Extract<HostileAnswer, { type: 'full' }>;
      return {
        ...answer,
        head: answer.head.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'),
        close: true,
      };
    }
    case 'gzip':
    case 'deflate': {
      if (file === undefined) return found();
      const encoded = behaviour === 'gzip' ? gzipSync(file) : deflateSync(file);
      return full(200, contentType, encoded, { 'Content-Encoding': behaviour });
    }
    case 'oversized-404':
    case 'oversized-500': {
      const status = behaviour === 'oversized-404' ? 404 : 500;
      const filler = Buffer.from(`${'<p>an error page that goes on and on</p>'.repeat(1600)}\n`);
      const head = `HTTP/1.1 ${status} ${REASONS[status]}\r\nContent-Type: text/html\r\nContent-Length: ${settings.oversizedBytes}\r\n\r\n`;
      return { type: 'stream', head, bytes: settings.oversizedBytes, filler };
    }
    case 'short-body':
    case 'stall-body': {
      const body = file ?? Buffer.from('not found\n');
      // Declared longer than the body, so that even an empty file is cut off mid-body.
      const head = `HTTP/1.1 200 OK\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length + 512}\r\n\r\n`;
      const sent = body.subarray(0, Math.ceil(body.length / 2));
      return { type: 'partial', head, body: sent, then: behaviour === 'short-body' ? 'close' : 'stall' };
    }
    case 'stall-headers':
      return {
        type: 'trickle-headers',
        head: `HTTP/1.1 200 OK\r\nContent-Type: ${contentType}\r\n`,
        everyMs: settings.trickleMs,
      };
    case 'redirect-loop':
      return full(302, TEXT, Buffer.alloc(0), { Location: request.target });
    case 'status-429':
      return full(429, TEXT, Buffer.from('rate limited\n'), {
        'Retry-After': String(settings.retryAfterSeconds),
      });
    case 'status-503':
      return full(503, TEXT, Buffer.from('down for maintenance\n'), {
        'Retry-After': new Date(Date.now() + settings.retryAfterSeconds * 1000).toUTCString(),
      });
    case 'status-500':
    case 'status-404':
    case 'status-410': {
      const status = Number(behaviour.slice('status-'.length));
      return full(status, TEXT, Buffer.from(`hostile upstream says ${status}\n`));
    }
    case 'html-info':
      if (request.kind !== 'info') return found();
      return full(
        200,
        'text/html; charset=utf-8',
        Buffer.from(
          '<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body>Sign in</body></html>\n',
        ),
      );
    case 'huge-list':
      if (request.kind !== 'list') return found();
      return full(200, TEXT, Buffer.from(hugeListVersions(settings.hugeListLines).join('\n') + '\n'));
  }
}

/** The versions of the `huge-list` behaviour's list, in the order it serves them. */
export function hugeListVersions(lines: number): string[] {
  return Array.from({ length: lines }, (_, i) => `v1.${Math.floor(i / 1000)}.${i % 1000}`);
}

function full(
  status: number,
  contentType: string,
  body: Buffer,
  headers: Record<string, string> = {},
): HostileAnswer {
  const lines = [
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Status'}`,
    `Content-Type: ${contentType}`,
    `Content-Length: ${body.length}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return { type: 'full', head: `${lines.join('\r\n')}\r\n\r\n`, body, close: false };
}
