import { type Agent, request } from 'node:http';
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface RawRequestOptions {
  method?: string;
  /** A keep-alive agent for many requests, or false for a new connection; default node's global agent. */
  agent?: Agent | false;
  signal?: AbortSignal;
}

/**
 * Sends `path` exactly as given in the request line (node:http's `path` option), so nothing
 * normalises it on the way: `fetch` and `new URL` resolve `..` and `%2e%2e` before sending.
 * node:http still refuses control characters, spaces and characters above U+00FF; use
 * {@link rawHttpExchange} for those. Rejects when the connection fails or is dropped.
 */
export function rawRequest(
  baseUrl: string,
  path: string,
  options: RawRequestOptions = {},
): Promise<RawResponse> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method: options.method ?? 'GET',
        path,
        ...(options.agent !== undefined ? { agent: options.agent } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * Writes `bytes` to a fresh TCP connection and resolves with everything the server sent back
 * until it closed the connection: for request lines no HTTP client would send. Send
 * `Connection: close`; the connection is not half-closed (node:http takes that as the client
 * giving up). Rejects when the server has not closed it after `timeoutMs` (default 10000).
 */
export function rawHttpExchange(
  baseUrl: string,
  bytes: Buffer | string,
  timeoutMs = 10_000,
): Promise<Buffer> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(
          `no end of the answer after ${timeoutMs} ms: ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 200))}`,
        ),
      );
    }, timeoutMs);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}
