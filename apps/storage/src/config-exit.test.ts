import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { beforeAll, describe, expect, it } from 'vitest';
import { appNodeArgs, bundleApp } from '@modproxy/testing';
import { loadStorageConfig } from './config';

/** Parts of the URIs below that are secrets: none may be printed. */
const SECRETS = ['s3cret-user', 'hunter2-pw', 'tok3n-value'];

/**
 * Connection strings the MongoDB driver refuses, each with the reason the storage service gives
 * (naming the variable, quoting nothing of the value).
 */
const REFUSED: ReadonlyArray<[string, RegExp]> = [
  [
    'http://s3cret-user:hunter2-pw@db:27017',
    /MONGODB_URI: must start with mongodb:\/\/ or mongodb\+srv:\/\//,
  ],
  [
    'mongodb://s3cret-user:hunter2:pw@db:27017',
    /MONGODB_URI: has characters in the password that must be percent-encoded/,
  ],
  [
    'mongodb://s3cret@user:hunter2-pw@db:27017',
    /MONGODB_URI: is not a connection string the MongoDB driver accepts/,
  ],
  ['mongodb://s3cret/user:hunter2-pw@db:27017', /MONGODB_URI: /],
  [
    'mongodb+srv://s3cret-user:hunter2-pw@db.example.test:27017',
    /MONGODB_URI: must not give a port with mongodb\+srv:\/\//,
  ],
  ['mongodb://s3cret-user:hunter2-pw@', /MONGODB_URI: must name at least one host/],
  [
    'mongodb://s3cret-user:hunter2-pw@db:27017/?tls=tok3n-value',
    /MONGODB_URI: has a value of the option tls that the MongoDB driver refuses/,
  ],
  [
    'mongodb://s3cret-user:hunter2-pw@db:27017/?maxPoolSize=tok3n-value',
    /MONGODB_URI: has a value of the option maxPoolSize that the MongoDB driver refuses/,
  ],
];

describe('MONGODB_URI the driver refuses', () => {
  it.each(REFUSED)('is refused by configuration, naming the variable: %s', (uri, message) => {
    let thrown: unknown;
    try {
      loadStorageConfig({ env: { STORAGE_BACKEND: 'mongo', MONGODB_URI: uri } });
    } catch (error) {
      thrown = error;
    }
    const text = String(thrown);
    expect(text).toMatch(message);
    for (const secret of SECRETS) expect(text).not.toContain(secret);
  });

  it('takes the connection strings the driver takes', () => {
    for (const uri of [
      'mongodb://127.0.0.1:27017',
      'mongodb://us%40er:p%3Aw@db1:27017,db2:27017/modproxy?replicaSet=rs0&tls=true',
      'mongodb+srv://user:pw@cluster.example.test/?retryWrites=true',
    ]) {
      expect(loadStorageConfig({ env: { STORAGE_BACKEND: 'mongo', MONGODB_URI: uri } }).MONGODB_URI).toBe(
        uri,
      );
    }
  });

  describe('the built storage service', () => {
    let main: string;
    beforeAll(async () => {
      main = await bundleApp('storage', 'storage-config-exit');
    });

    it.each(REFUSED.slice(1))('exits 2 naming MONGODB_URI, and prints no part of it: %s', async (uri) => {
      const child = spawn(process.execPath, appNodeArgs(main), {
        env: {
          PATH: process.env['PATH'] ?? '',
          STORAGE_BACKEND: 'mongo',
          MONGODB_URI: uri,
          GRPC_PORT: '0',
          HTTP_PORT: '0',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(2);
      expect(output).toMatch(/MONGODB_URI: /);
      expect(output).not.toContain('failed to start');
      for (const secret of SECRETS) expect(output).not.toContain(secret);
    });
  });
});
