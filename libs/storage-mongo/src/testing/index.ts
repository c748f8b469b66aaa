export {
  DEFAULT_FERRETDB_BINARY,
  ensureFerretDb,
  startFerretDb,
  type FerretDbOptions,
  type FerretDbServer,
} from './ferretdb-server';
