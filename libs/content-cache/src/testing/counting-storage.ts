import type {
  CallOptions,
  CatalogOptions,
  CatalogPage,
  IndexOptions,
  IndexPage,
  ModuleStorage,
  SaveInput,
  ZipContent,
} from '@modproxy/storage';

type Method = 'exists' | 'info' | 'mod' | 'zip' | 'save' | 'list' | 'delete' | 'catalog' | 'index';

/**
 * A storage that counts the calls that reach it, and can be switched off (every call fails as a
 * stopped storage service would): how the tests see what a cache asked storage.
 */
export class CountingStorage implements ModuleStorage {
  readonly calls: Record<Method, number> = {
    exists: 0,
    info: 0,
    mod: 0,
    zip: 0,
    save: 0,
    list: 0,
    delete: 0,
    catalog: 0,
    index: 0,
  };
  down = false;

  constructor(private readonly inner: ModuleStorage) {}

  /** Calls to the reads of module content. */
  get reads(): number {
    return this.calls.exists + this.calls.info + this.calls.mod + this.calls.zip;
  }

  exists(module: string, version: string, options?: CallOptions): Promise<boolean> {
    return this.call('exists', () => this.inner.exists(module, version, options));
  }
  info(module: string, version: string, options?: CallOptions): Promise<Buffer> {
    return this.call('info', () => this.inner.info(module, version, options));
  }
  mod(module: string, version: string, options?: CallOptions): Promise<Buffer> {
    return this.call('mod', () => this.inner.mod(module, version, options));
  }
  zip(module: string, version: string, options?: CallOptions): Promise<ZipContent> {
    return this.call('zip', () => this.inner.zip(module, version, options));
  }
  save(input: SaveInput, options?: CallOptions): Promise<void> {
    return this.call('save', () => this.inner.save(input, options));
  }
  list(module: string, options?: CallOptions): Promise<string[]> {
    return this.call('list', () => this.inner.list(module, options));
  }
  delete(module: string, version: string, options?: CallOptions): Promise<void> {
    return this.call('delete', () => this.inner.delete(module, version, options));
  }
  catalog(options: CatalogOptions): Promise<CatalogPage> {
    return this.call('catalog', () => this.inner.catalog(options));
  }
  index(options: IndexOptions): Promise<IndexPage> {
    return this.call('index', () => this.inner.index(options));
  }
  close(): Promise<void> {
    return this.inner.close();
  }

  private async call<T>(method: Method, run: () => Promise<T>): Promise<T> {
    this.calls[method] += 1;
    if (this.down) throw new Error(`storage is down (${method})`);
    return run();
  }
}
