export {
  createVersionServiceHandlers,
  sourceFromWire,
  sourceToWire,
  type VersionService,
  type VersionServiceOptions,
} from './version-service';
export * from './versions-grpc-server';
export * from './grpc-versions';
