import { toModuleError } from '@modproxy/errors';
import type { FetchedVersion, Upstream, UpstreamCallOptions, VersionFile } from './upstream';

/** One finished call to one upstream (a link of the chain), for metrics. */
export interface UpstreamCall {
  /** `goproxy` (an upstream proxy over HTTP) or `direct` (the go command against the VCS). */
  upstream: 'goproxy' | 'direct';
  /**
   * Who was asked: the upstream proxy's host (with its port), or for `direct` the module's VCS
   * host, its path's first element, lower-cased; `invalid` when that is not a host name (with a
   * dot), `other` for a one-element module path. Never a module path.
   */
  host: string;
  /** `info` and `mod` include a version's file asked for on its own (`versionFile`). */
  method: 'list' | 'latest' | 'info' | 'mod' | 'fetch';
  /** `ok`, or the error kind (`not-found`, `gone`, `timeout`, `bad-gateway`, `unavailable`, `cancelled`, …). */
  result: string;
  durationMs: number;
}

/** Told of every call an observed upstream made; must not throw. */
export type UpstreamCallListener = (call: UpstreamCall) => void;

/** What a host label may look like: a DNS name or address with an optional port. */
const HOST_FORM = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/;

/**
 * The VCS host a direct fetch of `module` goes to first: its path's first element, when it is
 * one the go command fetches from (a host name with a dot); `invalid` otherwise, and `other`
 * for a one-element path, whose host would be the module path itself.
 */
export function vcsHostOf(module: string): string {
  const slash = module.indexOf('/');
  if (slash < 0) return 'other';
  const host = hostLabel(module.slice(0, slash));
  return host.includes('.') ? host : 'invalid';
}

/** An upstream proxy URL's host (with its port), without any userinfo. */
export function proxyHostOf(url: string): string {
  try {
    return hostLabel(new URL(url).host);
  } catch {
    return 'invalid';
  }
}

function hostLabel(host: string): string {
  const lower = host.toLowerCase();
  return HOST_FORM.test(lower) ? lower : 'invalid';
}

/**
 * An upstream that tells `listener` how each of its calls went and how long it took, by
 * upstream kind, host and method: the hook the apps' metrics hang on (libs stay free of
 * prom-client). The calls themselves are passed through unchanged.
 */
export class ObservedUpstream implements Upstream {
  readonly name: string;

  constructor(
    private readonly inner: Upstream,
    private readonly kind: UpstreamCall['upstream'],
    private readonly hostOf: (module: string) => string,
    private readonly listener: UpstreamCallListener,
  ) {
    this.name = inner.name;
  }

  list(module: string, options?: UpstreamCallOptions): Promise<string[]> {
    return this.observe('list', module, () => this.inner.list(module, options));
  }

  latest(module: string, options?: UpstreamCallOptions): Promise<Buffer> {
    return this.observe('latest', module, () => this.inner.latest(module, options));
  }

  info(module: string, query: string, options?: UpstreamCallOptions): Promise<Buffer> {
    return this.observe('info', module, () => this.inner.info(module, query, options));
  }

  fetch(module: string, version: string, options?: UpstreamCallOptions): Promise<FetchedVersion> {
    return this.observe('fetch', module, () => this.inner.fetch(module, version, options));
  }

  versionFile(
    module: string,
    version: string,
    file: VersionFile,
    options?: UpstreamCallOptions,
  ): Promise<Buffer | undefined> {
    const versionFile = this.inner.versionFile?.bind(this.inner);
    // What the inner upstream cannot give costs no call, and is no call to count.
    if (!versionFile) return Promise.resolve(undefined);
    return this.observe(file, module, () => versionFile(module, version, file, options));
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }

  private async observe<T>(
    method: UpstreamCall['method'],
    module: string,
    call: () => Promise<T>,
  ): Promise<T> {
    const started = performance.now();
    let result = 'ok';
    try {
      return await call();
    } catch (error) {
      result = toModuleError(error, `upstream.${this.kind}.${method}`).kind;
      throw error;
    } finally {
      this.report({ method, result, module, durationMs: performance.now() - started });
    }
  }

  private report(call: {
    method: UpstreamCall['method'];
    result: string;
    module: string;
    durationMs: number;
  }) {
    try {
      this.listener({
        upstream: this.kind,
        host: this.hostOf(call.module),
        method: call.method,
        result: call.result,
        durationMs: call.durationMs,
      });
    } catch {
      // Metrics must never change an answer.
    }
  }
}
