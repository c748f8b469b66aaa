export * from './load-config';
export * from './schema-helpers';
export * from './redact-url';
export * from './secret-redactor';
export * from './config-secrets';
export * from './loopback-host';
