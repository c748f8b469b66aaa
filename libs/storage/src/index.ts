export * from './module-storage';
export { MemoryStorage } from './memory-storage';
export { DiskStorage, type DiskStorageOptions } from './disk-storage';
export {
  MAX_CATALOG_PAGE_SIZE,
  compareCatalogEntries,
  decodeCatalogToken,
  encodeCatalogToken,
  pageOfSorted,
  parseCatalogOptions,
  type CatalogRequest,
} from './catalog-paging';
export {
  abortedError,
  checkModule,
  checkModuleVersion,
  chunkToBuffer,
  normalizeZipSha256,
  throwIfAborted,
  toStorageError,
} from './storage-call';
