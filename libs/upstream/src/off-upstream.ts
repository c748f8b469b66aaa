import { errors, type ModuleError } from '@modproxy/errors';
import type { FetchedVersion, Upstream } from './upstream';

const MESSAGE = 'module lookup disabled by GOPROXY=off';

/**
 * The `off` entry of a GOPROXY list: every lookup fails. The kind is `not-found` (as the go
 * command's own error for it is a not-exist error), so this proxy answers 404 and a go
 * command that lists another proxy after ours still falls through to it.
 */
export class OffUpstream implements Upstream {
  readonly name = 'off';

  async list(module: string): Promise<string[]> {
    throw this.disabled('list', module);
  }

  async latest(module: string): Promise<Buffer> {
    throw this.disabled('latest', module);
  }

  async info(module: string, query: string): Promise<Buffer> {
    throw this.disabled('info', module, query);
  }

  async fetch(module: string, version: string): Promise<FetchedVersion> {
    throw this.disabled('fetch', module, version);
  }

  private disabled(method: string, module: string, version?: string): ModuleError {
    return errors.notFound(`upstream.off.${method}`, `${module}: ${MESSAGE}`, { module, version });
  }
}
