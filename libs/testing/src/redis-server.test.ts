import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startRedisServer } from './redis-server';

/** Sends one inline command and returns the first reply line. */
function command(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    socket.once('error', reject);
    socket.once('connect', () => socket.write(`${line}\r\n`));
    socket.on('data', (data: Buffer) => {
      reply += data.toString('latin1');
      const end = reply.indexOf('\r\n');
      if (end >= 0) {
        socket.destroy();
        resolve(reply.slice(0, end));
      }
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('startRedisServer', () => {
  it('runs an empty, non-persistent Redis on loopback, restarts it on the same port, and stops it', async () => {
    const redis = await startRedisServer();
    try {
      expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
      expect(await command(redis.port, 'SET greeting hello')).toBe('+OK');
      const pid = await processId(redis.port);
      expect(alive(pid)).toBe(true);

      await redis.restart();
      expect(alive(pid)).toBe(false);
      expect(await command(redis.port, 'PING')).toBe('+PONG');
      expect(await command(redis.port, 'EXISTS greeting')).toBe(':0');
      const restartedPid = await processId(redis.port);

      await redis.stop();
      expect(alive(restartedPid)).toBe(false);
      await expect(command(redis.port, 'PING')).rejects.toThrow();
    } finally {
      await redis.stop();
    }
  });

  it('requires a password when given one', async () => {
    const redis = await startRedisServer({ password: 'redis-pass-0123' });
    try {
      expect(await command(redis.port, 'PING')).toMatch(/^-NOAUTH/);
      expect(await command(redis.port, 'AUTH wrong-pass')).toMatch(/^-WRONGPASS/);
      expect(await command(redis.port, 'AUTH redis-pass-0123')).toBe('+OK');
    } finally {
      await redis.stop();
    }
  });
});

/** The server's own pid, from INFO server. */
async function processId(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    socket.once('error', reject);
    socket.once('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (data: Buffer) => {
      reply += data.toString('latin1');
      const match = /process_id:(\d+)/.exec(reply);
      if (match) {
        socket.destroy();
        resolve(Number(match[1]));
      }
    });
  });
}
