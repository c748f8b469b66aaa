import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SecretRedactor } from '@modproxy/config';
import { createHttpMetrics, createLogger } from './index';

async function logLines(write: (logger: ReturnType<typeof createLogger>) => void, redactor?: SecretRedactor) {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  const logger = createLogger({ service: 'proxy', destination: out, ...(redactor ? { redactor } : {}) });
  write(logger);
  await new Promise((resolve) => setImmediate(resolve));
  const text = chunks.join('');
  return {
    text,
    lines: text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('createLogger', () => {
  it('writes JSON lines with the service name and redacts tokens', async () => {
    const out = new PassThrough();
    const chunks: string[] = [];
    out.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
    const logger = createLogger({ service: 'proxy', destination: out });
    logger.info({ token: 's3cret', module: 'a.b/c' }, 'hello');
    await new Promise((resolve) => setImmediate(resolve));
    const line = JSON.parse(chunks.join('').trim());
    expect(line).toMatchObject({
      service: 'proxy',
      level: 'info',
      msg: 'hello',
      module: 'a.b/c',
      token: '[redacted]',
    });
    expect(chunks.join('')).not.toContain('s3cret');
  });

  it('cleans every line of the secrets it was given, in any field, message or error', async () => {
    const token = 'storage-token-0123456789';
    const basic = Buffer.from('alice:s3cretpw').toString('base64');
    const redactor = new SecretRedactor([token, 'alice', 's3cretpw', basic]);
    const { text, lines } = await logLines((logger) => {
      logger.info({ upstream: 'http://alice:s3cretpw@127.0.0.1:8081' }, 'proxy listening');
      logger.warn({ detail: `upstream echoed Authorization: Basic ${basic}` }, `token ${token} refused`);
      const error = Object.assign(new Error(`AUTH failed for alice`), {
        command: { name: 'auth', args: ['s3cretpw'] },
      });
      logger.error({ err: error }, 'redis failed');
      logger.child({ module: 'example.com/alice/mod' }).info('fetched');
    }, redactor);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatchObject({ upstream: 'http://xxxxx@127.0.0.1:8081' });
    expect(lines[1]).toMatchObject({
      detail: 'upstream echoed Authorization: Basic [redacted]',
      msg: 'token [redacted] refused',
    });
    expect(lines[2]?.['err']).toMatchObject({
      message: 'AUTH failed for [redacted]',
      command: { args: '[redacted]' },
    });
    expect(lines[3]).toMatchObject({ module: 'example.com/[redacted]/mod' });
    for (const secret of [token, 'alice', 's3cretpw', basic]) expect(text).not.toContain(secret);
  });

  it('hides URL userinfo even with no secrets known', async () => {
    const { text, lines } = await logLines((logger) => {
      logger.warn({ err: 'GET http://bob:hunter2@10.0.0.1/x/@v/list: 404' }, 'fetch failed');
    });
    expect(lines[0]).toMatchObject({ err: 'GET http://xxxxx@10.0.0.1/x/@v/list: 404' });
    expect(text).not.toMatch(/bob|hunter2/);
  });
});

describe('createHttpMetrics', () => {
  it('keeps one registry per app and exposes request series', async () => {
    const a = createHttpMetrics('proxy');
    const b = createHttpMetrics('proxy');
    a.requests.inc({ route: 'zip', method: 'GET', status: '200' });
    expect(await a.registry.metrics()).toContain(
      'proxy_http_requests_total{route="zip",method="GET",status="200"} 1',
    );
    expect(await b.registry.metrics()).not.toContain('route="zip"');
  });
});
