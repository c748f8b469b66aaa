import type { CallOptions, ModuleStorage, SaveInput } from '@modproxy/storage';

/**
 * Wraps a storage backend so the next save can be held once it has begun (the storage service
 * has the header, the client is streaming the zip) until the test releases it or the client
 * goes away: a test can kill a writer in the middle of a save. Every other method is the
 * backend's own.
 */
export class SaveHold {
  private hold: { started: () => void; released: Promise<void> } | undefined;
  private release: (() => void) | undefined;

  /** The backend, with saves going through this hold. */
  wrap(backend: ModuleStorage): ModuleStorage {
    const save = (input: SaveInput, options: CallOptions = {}) => this.save(backend, input, options);
    return new Proxy(backend, {
      get(target, property, receiver) {
        if (property === 'save') return save;
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

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

  private async save(backend: ModuleStorage, input: SaveInput, options: CallOptions): Promise<void> {
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
    return backend.save(input, options);
  }
}
