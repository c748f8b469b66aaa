export * from './upstream';
export * from './goproxy-upstream';
export * from './parse-goproxy';
export * from './upstream-chain';
export * from './off-upstream';
export * from './go-command';
export * from './direct-upstream';
export * from './create-upstream';
