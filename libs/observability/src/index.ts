export * from './logger';
export * from './metrics';
export * from './bounded-label';
export * from './upstream-metrics';
export * from './grpc-server-metrics';
