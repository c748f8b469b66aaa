export * from './goproxy-path';
export * from './service-app';
export * from './http-server';
export * from './client-error';
export * from './request-id';
export * from './loopback-host';
export * from './admin-auth-config';
export * from './admin-auth';
