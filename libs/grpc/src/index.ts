export * from './error-codes';
export * from './bearer-token';
export * from './grpc-credentials';
export * from './grpc-call-observer';
export * from './server-call-scope';
export * from './serve-grpc';
export * from './unary-handler';
export * from './unary-call';
