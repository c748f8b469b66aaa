import { type FetchOptions, type VersionFetcher, waitFor } from '@modproxy/module-service';
import type { PrimaryChannel } from './primary-channel';

/**
 * A worker's miss path: the primary process fetches (its InProcessFetcher, one SingleFlight for
 * every worker), so a version is fetched from upstream once however many workers and clients
 * ask. The caller's signal ends only its own wait, as with the in-process fetcher.
 */
export class WorkerFetcher implements VersionFetcher {
  constructor(private readonly primary: PrimaryChannel) {}

  fetch(module: string, version: string, options: FetchOptions = {}): Promise<void> {
    return waitFor(this.primary.fetch(module, version, options.goModSha256), options.signal, {
      op: 'module.fetch',
      module,
      version,
    });
  }

  async enqueue(module: string, version: string): Promise<void> {
    this.primary.enqueue(module, version);
  }
}
