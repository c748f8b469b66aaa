export * from './module-storage';
export { MemoryStorage, type MemoryStorageOptions } from './memory-storage';
export { DiskStorage, type DiskStorageOptions } from './disk-storage';
export { DiskZipStream, isRecyclingReadable, type RecyclingReadable } from './disk-zip-stream';
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
  MAX_INDEX_PAGE_SIZE,
  compareIndexEntries,
  decodeIndexToken,
  encodeIndexToken,
  isIndexCandidate,
  pageOfSortedIndex,
  parseIndexOptions,
  type IndexRequest,
} from './index-paging';
export {
  checkModule,
  checkModuleVersion,
  chunkToBuffer,
  normalizeZipSha256,
  toStorageError,
} from './storage-call';
