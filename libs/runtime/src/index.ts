export * from './run-service';
export * from './leftover-temp-dirs';
