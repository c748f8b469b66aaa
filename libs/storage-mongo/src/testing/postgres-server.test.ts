import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  createPostgresDatabase,
  dropPostgresDatabase,
  findPostgresBinDir,
  startPostgresServer,
} from './postgres-server';

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One SQL statement through psql, the way an operator would ask. */
async function query(url: string, sql: string): Promise<string> {
  const psql = join(await findPostgresBinDir(), 'psql');
  const { stdout } = await promisify(execFile)(psql, [url, '-XtAc', sql], { env: { PATH: '/usr/bin:/bin' } });
  return stdout.trim();
}

describe('startPostgresServer', () => {
  it('serves on loopback as an unprivileged user, and stop ends it by pid and removes its data', async () => {
    const server = await startPostgresServer();
    let stopped = false;
    try {
      expect(server.url).toBe(`postgres://postgres@127.0.0.1:${server.port}/postgres?sslmode=disable`);
      expect(await query(server.url, 'SHOW listen_addresses')).toBe('127.0.0.1');
      const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1];
      // PostgreSQL refuses to run as root: run as root, the launcher runs it as `postgres`.
      expect(Number(uid)).not.toBe(0);
      if (process.getuid?.() !== 0) expect(Number(uid)).toBe(process.getuid?.());
      const dataDir = readlinkSync(`/proc/${server.pid}/cwd`);
      expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true);

      await server.stop();
      stopped = true;
      expect(isRunning(server.pid)).toBe(false);
      expect(existsSync(dataDir)).toBe(false);
      await server.stop();
    } finally {
      if (!stopped) await server.stop();
    }
  });

  it('creates and drops databases for its clients', async () => {
    const server = await startPostgresServer();
    try {
      const url = await createPostgresDatabase(server.url, 'things');
      expect(url).toBe(`postgres://postgres@127.0.0.1:${server.port}/things?sslmode=disable`);
      expect(await query(url, 'SELECT current_database()')).toBe('things');
      const fresh = new URL(await createPostgresDatabase(server.url)).pathname.slice(1);
      expect(fresh).toMatch(/^db_[0-9a-f]{12}$/);
      const names = () => query(server.url, 'SELECT datname FROM pg_database ORDER BY datname');
      expect((await names()).split('\n')).toEqual(expect.arrayContaining(['things', fresh]));
      await dropPostgresDatabase(server.url, 'things');
      await dropPostgresDatabase(server.url, 'things');
      expect((await names()).split('\n')).not.toContain('things');
    } finally {
      await server.stop();
    }
  });
});
