import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { errors } from '@modproxy/errors';
import { createHttpMetrics, createLogger } from '@modproxy/observability';
import { closeHttp, listenHttp } from './http-server';
import { createServiceApp, finishServiceApp } from './service-app';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => closeHttp(server, 1_000)));
});

async function serveFailing(error: Error): Promise<{ url: string; logs: string[] }> {
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = createLogger({ service: 'test', destination });
  const app = createServiceApp({
    logger,
    metrics: createHttpMetrics('test'),
    readiness: async () => 'ok',
    isShuttingDown: () => false,
  });
  app.get('/fail', () => {
    throw error;
  });
  const server = createServer(finishServiceApp(app, logger));
  servers.push(server);
  return { url: await listenHttp(server, 0, '127.0.0.1'), logs };
}

describe('the error mapping', () => {
  it('tells the client an internal failure happened, and only the log what it was', async () => {
    const failure = errors.internal(
      'storage.disk.info',
      "EACCES: permission denied, open '/srv/modproxy/storage/example.com/m/@v/v1.0.0.info'",
      { module: 'example.com/m', version: 'v1.0.0' },
    );
    const { url, logs } = await serveFailing(failure);
    const response = await fetch(`${url}/fail`);
    const body = await response.text();
    expect(response.status).toBe(500);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(body).toBe('example.com/m@v1.0.0: internal error (the server logged the details)\n');
    expect(body).not.toContain('/srv/modproxy');
    expect(logs.join('')).toContain('/srv/modproxy/storage');
  });

  it('sends Retry-After and the message of an unavailable answer', async () => {
    const { url } = await serveFailing(
      errors.unavailable('upstream.direct', 'too many fetches waiting; try again shortly', {
        retryAfterSeconds: 2.2,
      }),
    );
    const response = await fetch(`${url}/fail`);
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('3');
    expect(await response.text()).toBe('too many fetches waiting; try again shortly\n');
  });

  it('never sends the detail meant for operators', async () => {
    const { url, logs } = await serveFailing(
      errors.badGateway('upstream.goproxy.fetch', 'example.com/m@v1.0.0: upstream failed: 500 (.zip)', {
        detail: 'http://127.0.0.1:1/example.com/m/@v/v1.0.0.zip: 500: <html>oops</html>',
      }),
    );
    const response = await fetch(`${url}/fail`);
    expect(response.status).toBe(502);
    expect(await response.text()).toBe('example.com/m@v1.0.0: upstream failed: 500 (.zip)\n');
    expect(logs.join('')).toContain('<html>oops</html>');
  });
});
