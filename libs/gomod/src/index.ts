export * from './escape';
export * from './semver';
export * from './path';
export * from './pseudo';
export * from './latest';
export * from './go-mod';
export * from './version-query';
