import { existsSync } from 'node:fs';
import { MongoClient } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { startFerretDb } from './ferretdb-server';

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('startFerretDb', () => {
  it('serves the MongoDB wire protocol on loopback and stops its process by pid', async () => {
    const server = await startFerretDb();
    let stopped = false;
    try {
      expect(server.uri).toMatch(/^mongodb:\/\/127\.0\.0\.1:\d+\//);
      expect(isRunning(server.pid)).toBe(true);
      const client = await MongoClient.connect(server.uri);
      try {
        await client.db('launcher').collection('things').insertOne({ name: 'one' });
        expect(await client.db('launcher').collection('things').countDocuments()).toBe(1);
      } finally {
        await client.close();
      }
      await server.stop();
      stopped = true;
      expect(isRunning(server.pid)).toBe(false);
      await server.stop();
    } finally {
      if (!stopped) await server.stop();
    }
  });

  it('gives each server its own data and port', async () => {
    const [a, b] = await Promise.all([startFerretDb(), startFerretDb()]);
    try {
      expect(a.uri).not.toBe(b.uri);
      const clientA = await MongoClient.connect(a.uri);
      const clientB = await MongoClient.connect(b.uri);
      try {
        await clientA.db('iso').collection('c').insertOne({ x: 1 });
        expect(await clientB.db('iso').collection('c').countDocuments()).toBe(0);
      } finally {
        await clientA.close();
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
});
