import type { CallOptions, CatalogOptions, IndexOptions, ModuleStorage, SaveInput } from '@modproxy/storage';

/**
 * A storage backend that can hold the next save once it has begun (the storage service has the
 * header, the client is streaming the zip) until the test releases it or the client goes away,
 * so a test can kill a writer in the middle of a save. Everything else passes through.
 */
export class HoldingStorage implements ModuleStorage {
  private hold: { started: () => void; released: Promise<void> } | undefined;
  private release: (() => void) | undefined;

  constructor(private readonly backend: ModuleStorage) {}

  /** Holds the next save; resolves once one has begun. */
  holdNextSave(): Promise<void> {
    let released: () => void = () => undefined;
    const promise = new Promise<void>((resolve) => {
      released = resolve;
    });
    this.release = released;
    return new Promise<void>((started) => {
      this.hold = { started, released: promise };
    });
  }

  /** Lets a held save go on. */
  releaseSave(): void {
    this.release?.();
    this.release = undefined;
  }

  async save(input: SaveInput, options: CallOptions = {}): Promise<void> {
    const hold = this.hold;
    this.hold = undefined;
    if (hold) {
      hold.started();
      const signal = options.signal;
      await new Promise<void>((resolve) => {
        void hold.released.then(resolve);
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    return this.backend.save(input, options);
  }

  exists(module: string, version: string, options?: CallOptions) {
    return this.backend.exists(module, version, options);
  }
  info(module: string, version: string, options?: CallOptions) {
    return this.backend.info(module, version, options);
  }
  mod(module: string, version: string, options?: CallOptions) {
    return this.backend.mod(module, version, options);
  }
  zip(module: string, version: string, options?: CallOptions) {
    return this.backend.zip(module, version, options);
  }
  list(module: string, options?: CallOptions) {
    return this.backend.list(module, options);
  }
  delete(module: string, version: string, options?: CallOptions) {
    return this.backend.delete(module, version, options);
  }
  index(options: IndexOptions) {
    return this.backend.index(options);
  }
  catalog(options: CatalogOptions) {
    return this.backend.catalog(options);
  }
  close() {
    return this.backend.close();
  }
}
