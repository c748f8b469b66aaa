import type { FetchedVersion, Upstream, UpstreamCallOptions } from '@modproxy/upstream';

/** An upstream that records every fetch it is asked for, then asks the real one. */
export class CountingUpstream implements Upstream {
  readonly fetches: string[] = [];

  constructor(private readonly upstream: Upstream) {}

  get name(): string {
    return this.upstream.name;
  }

  list(module: string, options?: UpstreamCallOptions): Promise<string[]> {
    return this.upstream.list(module, options);
  }

  latest(module: string, options?: UpstreamCallOptions): Promise<Buffer> {
    return this.upstream.latest(module, options);
  }

  info(module: string, query: string, options?: UpstreamCallOptions): Promise<Buffer> {
    return this.upstream.info(module, query, options);
  }

  fetch(module: string, version: string, options?: UpstreamCallOptions): Promise<FetchedVersion> {
    this.fetches.push(`${module}@${version}`);
    return this.upstream.fetch(module, version, options);
  }

  async close(): Promise<void> {
    await this.upstream.close?.();
  }
}
