export * from './module-service';
export * from './single-flight';
