export {
  DEFAULT_FERRETDB_BINARY,
  ensureFerretDb,
  startFerretDb,
  type FerretDbBackend,
  type FerretDbOptions,
  type FerretDbServer,
} from './ferretdb-server';
export {
  createPostgresDatabase,
  createPostgresRole,
  dropPostgresDatabase,
  findPostgresBinDir,
  startPostgresServer,
  type PostgresServer,
  type PostgresServerOptions,
} from './postgres-server';
