/** The warm command: module versions from a go.sum, go.mod or list, fetched through a proxy or queued. */
export * from './warm-entries';
export * from './warmer';
export * from './proxy-warmer';
export * from './queue-warmer';
export * from './warm-progress';
export * from './warm-run';
export * from './warm-summary';
export * from './warm-cli';
