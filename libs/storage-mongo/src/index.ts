export {
  MongoStorage,
  type MongoStorageOptions,
  type OrphanCleanupOptions,
  type OrphanCleanupResult,
} from './mongo-storage';
export { DUPLICATE_KEY, isDuplicateKeyError, toMongoStorageError } from './mongo-errors';
export {
  DEFAULT_FERRETDB_BINARY,
  ensureFerretDb,
  startFerretDb,
  type FerretDbOptions,
  type FerretDbServer,
} from './testing/ferretdb-server';
