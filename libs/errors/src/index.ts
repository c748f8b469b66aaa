export * from './module-error';
export * from './http-status';
export * from './aborted';
