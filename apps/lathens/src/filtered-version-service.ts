import type { ModuleFilter } from '@modproxy/gomod';
import type { CallOptions } from '@modproxy/storage';
import type { LatestAnswer, ListAnswer } from '@modproxy/versions';
import type { VersionService } from '@modproxy/versions-grpc';

/**
 * lathens' answers behind the module filter: a module it refuses gets `forbidden` (HTTP 403,
 * gRPC PERMISSION_DENIED) from every method, over HTTP and gRPC alike, before the cache,
 * storage or upstream hears of it.
 */
export class FilteredVersionService implements VersionService {
  constructor(
    private readonly service: VersionService,
    private readonly filter: ModuleFilter,
  ) {}

  async list(module: string, options?: CallOptions): Promise<ListAnswer> {
    this.filter.check('lathens.list', module);
    return this.service.list(module, options);
  }

  async latest(module: string, options?: CallOptions): Promise<LatestAnswer> {
    this.filter.check('lathens.latest', module);
    return this.service.latest(module, options);
  }

  async observe(module: string, version: string, options?: CallOptions): Promise<void> {
    this.filter.check('lathens.observe', module, version);
    return this.service.observe(module, version, options);
  }

  async invalidate(module: string): Promise<void> {
    this.filter.check('lathens.invalidate', module);
    return this.service.invalidate(module);
  }

  async refreshList(module: string, options?: CallOptions): Promise<ListAnswer> {
    this.filter.check('lathens.refresh', module);
    return this.service.refreshList(module, options);
  }

  close(): Promise<void> {
    return this.service.close();
  }
}
