export { createStorageServiceHandlers, type StorageServiceOptions } from './storage-service';
export * from './storage-grpc-server';
export * from './grpc-storage';
export { ZIP_CHUNK_BYTES, DEFAULT_MAX_MESSAGE_BYTES } from './zip-chunks';
export * from './zip-bytes-observer';
