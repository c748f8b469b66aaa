export * from './versions-provider';
export * from './upstream-versions';
