export {
  MongoStorage,
  type MongoStorageOptions,
  type OrphanCleanupOptions,
  type OrphanCleanupResult,
} from './mongo-storage';
export { DUPLICATE_KEY, isDuplicateKeyError, toMongoStorageError } from './mongo-errors';
