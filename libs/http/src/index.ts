export * from './goproxy-path';
export * from './service-app';
export * from './http-server';
export * from './client-error';
export * from './request-id';
