import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createHttpMetrics, createLogger } from './index';

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
