export * from './module-service';
export * from './single-flight';
export * from './version-fetcher';
export * from './in-process-fetcher';
export * from './download-policy';
export * from './redirect-to-upstream';
export * from './module-feeds';
export * from './early-files';
