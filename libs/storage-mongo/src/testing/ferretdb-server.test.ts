import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { describe, expect, inject, it } from 'vitest';
import { runCommandOrThrow } from '@modproxy/testing';
import { DEFAULT_FERRETDB_BINARY, startFerretDb, type FerretDbOptions } from './ferretdb-server';

const postgresUrl = inject('postgresUrl');
const REPO_ROOT = join(__dirname, '..', '..', '..', '..');

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function insertAndCount(uri: string, database: string): Promise<number> {
  const client = await MongoClient.connect(uri);
  try {
    await client.db(database).collection('things').insertOne({ name: 'one' });
    return await client.db(database).collection('things').countDocuments();
  } finally {
    await client.close();
  }
}

describe('startFerretDb', () => {
  it.each<[string, FerretDbOptions]>([
    ['PostgreSQL (a database on a running server)', { postgresUrl }],
    ['PostgreSQL (a server of its own)', {}],
    ['SQLite', { backend: 'sqlite' }],
  ])(
    'serves the MongoDB wire protocol on loopback over %s and stops its process by pid',
    async (_, options) => {
      const server = await startFerretDb(options);
      let stopped = false;
      try {
        expect(server.backend).toBe(options.backend ?? 'postgresql');
        expect(server.uri).toMatch(/^mongodb:\/\/127\.0\.0\.1:\d+\//);
        expect(isRunning(server.pid)).toBe(true);
        expect(await insertAndCount(server.uri, 'launcher')).toBe(1);
        await server.stop();
        stopped = true;
        expect(isRunning(server.pid)).toBe(false);
        await server.stop();
      } finally {
        if (!stopped) await server.stop();
      }
    },
  );

  it('gives each server its own data and port, also on one PostgreSQL', async () => {
    const [a, b] = await Promise.all([startFerretDb({ postgresUrl }), startFerretDb({ postgresUrl })]);
    try {
      expect(a.uri).not.toBe(b.uri);
      expect(await insertAndCount(a.uri, 'iso')).toBe(1);
      const clientB = await MongoClient.connect(b.uri);
      try {
        expect(await clientB.db('iso').collection('things').countDocuments()).toBe(0);
      } finally {
        await clientB.close();
      }
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('rejects a missing binary with a message naming the install script', async () => {
    const missing = '/nonexistent/ferretdb';
    expect(existsSync(missing)).toBe(false);
    await expect(startFerretDb({ binary: missing })).rejects.toThrow(/ensure-ferretdb\.sh/);
  });

  it('finds the default binary under the repository also from a bundle run elsewhere', async () => {
    expect(DEFAULT_FERRETDB_BINARY).toBe(join(REPO_ROOT, 'tmp', 'bin', 'ferretdb'));
    // As a bench runs it: bundled into tmp/, run from another working directory.
    const dir = join(REPO_ROOT, 'tmp', 'test-bundles', `ferretdb-default-${process.pid}`);
    await mkdir(dir, { recursive: true });
    try {
      const entry = join(dir, 'entry.ts');
      await writeFile(
        entry,
        "import { DEFAULT_FERRETDB_BINARY } from '@modproxy/storage-mongo/testing';\n" +
          'process.stdout.write(DEFAULT_FERRETDB_BINARY);\n',
      );
      const script = join(REPO_ROOT, 'scripts', 'build-app.mjs');
      const outfile = join(dir, 'entry.mjs');
      await runCommandOrThrow(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const { bundle } = await import(${JSON.stringify(script)}); await bundle(${JSON.stringify(entry)}, ${JSON.stringify(outfile)});`,
        ],
        { cwd: REPO_ROOT, env: { PATH: process.env['PATH'] ?? '' } },
      );
      const { stdout } = await runCommandOrThrow(process.execPath, [outfile], {
        cwd: tmpdir(),
        env: { PATH: process.env['PATH'] ?? '' },
      });
      expect(stdout).toBe(DEFAULT_FERRETDB_BINARY);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
