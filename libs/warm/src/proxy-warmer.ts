import { escapePath, escapeVersion } from '@modproxy/gomod';
import type { WarmEntry } from './warm-entries';
import type { Warmer, WarmOutcome } from './warmer';

export interface ProxyWarmerOptions {
  /** Base URL of the GOPROXY (no credentials: fetch refuses them, and they would be printed). */
  proxyUrl: string;
  /** Deadline of each request (the one that makes the proxy fetch may take long). @default 300000 */
  timeoutMs?: number;
}

/** An error body is shown this far, like the go command shows a proxy's message. */
const MAX_REASON = 300;

/**
 * Warms through a GOPROXY as the go command would: `.mod`, then `.info` and `.zip` (read to
 * its end and checked against Content-Length). The first request makes the proxy fetch a
 * missing version; its `X-Modproxy-Source` header (`upstream` or `storage`) tells whether it
 * was fetched now or already there. A proxy that sends no such header counts as fetched.
 */
export class ProxyWarmer implements Warmer {
  private readonly base: string;
  private readonly timeoutMs: number;

  constructor(options: ProxyWarmerOptions) {
    this.base = options.proxyUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 300_000;
  }

  async warm(entry: WarmEntry, signal: AbortSignal): Promise<WarmOutcome> {
    const prefix = `${this.base}/${escapePath(entry.module)}/@v/${escapeVersion(entry.version)}`;
    let fetched = false;
    for (const kind of ['mod', 'info', 'zip'] as const) {
      const outcome = await this.get(`${prefix}.${kind}`, kind, signal);
      if (typeof outcome === 'string') return { result: 'failed', reason: outcome };
      if (outcome.source !== 'storage') fetched = true;
    }
    return { result: fetched ? 'fetched' : 'already-there' };
  }

  async close(): Promise<void> {}

  /** The answer's source, or why the request failed. */
  private async get(
    url: string,
    kind: 'mod' | 'info' | 'zip',
    signal: AbortSignal,
  ): Promise<{ source: string | null } | string> {
    const deadline = AbortSignal.timeout(this.timeoutMs);
    try {
      const response = await fetch(url, { signal: AbortSignal.any([signal, deadline]) });
      if (!response.ok) {
        const body = (await response.text()).trim().split('\n')[0] ?? '';
        return `.${kind}: ${response.status}${body ? ` ${body.slice(0, MAX_REASON)}` : ''}`;
      }
      let bytes = 0;
      for await (const chunk of response.body ?? []) bytes += (chunk as Uint8Array).byteLength;
      const length = response.headers.get('content-length');
      if (length !== null && Number(length) !== bytes) {
        return `.${kind}: the answer ended after ${bytes} of ${length} bytes`;
      }
      return { source: response.headers.get('x-modproxy-source') };
    } catch (error) {
      if (deadline.aborted) return `.${kind}: no answer within ${this.timeoutMs} ms`;
      if (signal.aborted) return `.${kind}: interrupted`;
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      return `.${kind}: ${cause?.code ?? cause?.message ?? (error as Error).message}`;
    }
  }
}
