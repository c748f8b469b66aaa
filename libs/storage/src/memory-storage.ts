import { createHash } from 'node:crypto';
import { Readable, addAbortSignal } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errors, throwIfAborted } from '@modproxy/errors';
import { sortVersions } from '@modproxy/gomod';
import { compareCatalogEntries, pageOfSorted, parseCatalogOptions } from './catalog-paging';
import { compareIndexEntries, pageOfSortedIndex, parseIndexOptions } from './index-paging';
import type {
  CallOptions,
  CatalogOptions,
  CatalogPage,
  IndexEntry,
  IndexOptions,
  IndexPage,
  ModuleStorage,
  ModuleVersionRef,
  SaveInput,
  ZipContent,
} from './module-storage';
import {
  checkModule,
  checkModuleVersion,
  chunkToBuffer,
  normalizeZipSha256,
  toStorageError,
} from './storage-call';

interface StoredVersion {
  info: Buffer;
  mod: Buffer;
  zip: Buffer;
  zipSha256: string;
  storedAt: number;
}

export interface MemoryStorageOptions {
  /** The clock of `storedAt`. @default Date.now */
  now?: () => number;
}

/**
 * Module storage in process memory, for unit tests and throw-away runs. Zips are buffered
 * whole (unlike every other adapter), but the contract is otherwise the same: immutable
 * versions, all-or-nothing saves, the same errors.
 */
export class MemoryStorage implements ModuleStorage {
  /** module path → version → content */
  private readonly modules = new Map<string, Map<string, StoredVersion>>();
  private readonly now: () => number;

  constructor(options: MemoryStorageOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  async exists(module: string, version: string, options: CallOptions = {}): Promise<boolean> {
    this.enter('storage.memory.exists', module, version, options);
    return this.modules.get(module)?.has(version) ?? false;
  }

  async info(module: string, version: string, options: CallOptions = {}): Promise<Buffer> {
    return Buffer.from(this.find('storage.memory.info', module, version, options).info);
  }

  async mod(module: string, version: string, options: CallOptions = {}): Promise<Buffer> {
    return Buffer.from(this.find('storage.memory.mod', module, version, options).mod);
  }

  async zip(module: string, version: string, options: CallOptions = {}): Promise<ZipContent> {
    const { zip, zipSha256 } = this.find('storage.memory.zip', module, version, options);
    const stream = Readable.from([zip], { objectMode: false });
    if (options.signal) addAbortSignal(options.signal, stream);
    return { size: zip.length, stream, sha256: zipSha256 };
  }

  async save(input: SaveInput, options: CallOptions = {}): Promise<void> {
    const op = 'storage.memory.save';
    const { module, version, signal } = { ...input, signal: options.signal };
    const refs = { module, version };
    try {
      checkModuleVersion(op, module, version);
      const expectedSha256 = normalizeZipSha256(op, input.zipSha256, refs);
      throwIfAborted(op, signal, refs);
      if (this.modules.get(module)?.has(version)) {
        throw errors.alreadyExists(op, `${module}@${version} is already stored`, refs);
      }
      const info = Buffer.from(input.info);
      const mod = Buffer.from(input.mod);
      const chunks: Buffer[] = [];
      const hash = createHash('sha256');
      await pipeline(
        input.zip,
        async (source: AsyncIterable<unknown>) => {
          for await (const chunk of source) {
            const bytes = Buffer.from(chunkToBuffer(op, chunk));
            hash.update(bytes);
            chunks.push(bytes);
          }
        },
        signal ? { signal } : {},
      );
      const actualSha256 = hash.digest('hex');
      if (expectedSha256 !== undefined && actualSha256 !== expectedSha256) {
        throw errors.invalidArgument(
          op,
          `zip SHA-256 ${actualSha256} does not match the expected ${expectedSha256}`,
          refs,
        );
      }
      throwIfAborted(op, signal, refs);
      // Checked again now: another save may have finished while this one streamed.
      const versions = this.modules.get(module) ?? new Map<string, StoredVersion>();
      if (versions.has(version)) {
        throw errors.alreadyExists(op, `${module}@${version} is already stored`, refs);
      }
      versions.set(version, {
        info,
        mod,
        zip: Buffer.concat(chunks),
        zipSha256: actualSha256,
        storedAt: this.now(),
      });
      this.modules.set(module, versions);
    } catch (error) {
      if (!input.zip.destroyed) input.zip.destroy();
      throw toStorageError(error, op, signal, refs);
    }
  }

  async list(module: string, options: CallOptions = {}): Promise<string[]> {
    const op = 'storage.memory.list';
    checkModule(op, module);
    throwIfAborted(op, options.signal, { module });
    return sortVersions([...(this.modules.get(module)?.keys() ?? [])]);
  }

  async delete(module: string, version: string, options: CallOptions = {}): Promise<void> {
    const op = 'storage.memory.delete';
    this.find(op, module, version, options);
    const versions = this.modules.get(module);
    versions?.delete(version);
    if (versions?.size === 0) this.modules.delete(module);
  }

  async catalog(options: CatalogOptions): Promise<CatalogPage> {
    const op = 'storage.memory.catalog';
    const request = parseCatalogOptions(op, options);
    throwIfAborted(op, options.signal);
    const all: ModuleVersionRef[] = [];
    for (const [module, versions] of this.modules) {
      for (const version of versions.keys()) all.push({ module, version });
    }
    all.sort(compareCatalogEntries);
    return pageOfSorted(all, request);
  }

  async index(options: IndexOptions): Promise<IndexPage> {
    const op = 'storage.memory.index';
    const request = parseIndexOptions(op, options);
    throwIfAborted(op, options.signal);
    const all: IndexEntry[] = [];
    for (const [module, versions] of this.modules) {
      for (const [version, stored] of versions)
        all.push({ module, version, storedAt: new Date(stored.storedAt) });
    }
    all.sort(compareIndexEntries);
    return pageOfSortedIndex(all, request);
  }

  async close(): Promise<void> {
    this.modules.clear();
  }

  private enter(op: string, module: string, version: string, options: CallOptions): void {
    checkModuleVersion(op, module, version);
    throwIfAborted(op, options.signal, { module, version });
  }

  private find(op: string, module: string, version: string, options: CallOptions): StoredVersion {
    this.enter(op, module, version, options);
    const stored = this.modules.get(module)?.get(version);
    if (!stored) throw errors.notFound(op, `${module}@${version} is not stored`, { module, version });
    return stored;
  }
}
