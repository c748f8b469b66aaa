export * from './host-limits';
export * from './host-politeness-config';
export * from './host-politeness';
export * from './host-gate';
export * from './host-middleware';
