export * from './limits';
export * from './dirhash';
export * from './go-mod-match';
export * from './verify-module-zip';
