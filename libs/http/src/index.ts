export * from './goproxy-path';
export * from './service-app';
