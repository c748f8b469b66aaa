import { createServer, type Server } from 'node:http';
import { Agent } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rawHttpExchange, rawRequest } from '@modproxy/testing';
import { closeHttp, listenHttp } from './http-server';

describe('answers to requests node:http cannot parse', () => {
  let server: Server;
  let url: string;

  beforeEach(async () => {
    server = createServer((req, res) => {
      res.setHeader('Content-Type', 'application/octet-stream');
      if (req.url === '/slow-end') {
        // Every byte is sent, but end() comes only once the client has sent its next request,
        // as with a streamed zip whose stream has not ended yet.
        res.setHeader('Content-Length', '5');
        res.write('hello');
        req.socket.once('data', () => res.end());
        return;
      }
      res.end('ok');
    });
    url = await listenHttp(server, 0, '127.0.0.1');
  });

  afterEach(async () => {
    await closeHttp(server, 1_000);
  });

  it('answers a byte outside the URL grammar with a text/plain 400', async () => {
    const answer = (
      await rawHttpExchange(url, 'GET /a.b/\u00e9/@v/list HTTP/1.1\r\nHost: x\r\n\r\n')
    ).toString('latin1');
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(answer).toContain('Content-Type: text/plain; charset=utf-8\r\n');
    expect(answer).toContain('Connection: close\r\n');
    expect(answer).toMatch(/\r\n\r\nbad request: the request could not be parsed\n$/);
  });

  it('answers a HEAD request without a body', async () => {
    const answer = (await rawHttpExchange(url, 'HEAD /\u00e9 HTTP/1.1\r\nHost: x\r\n\r\n')).toString(
      'latin1',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(answer).toMatch(/\r\n\r\n$/);
  });

  it('answers headers that are too large with 431', async () => {
    const answer = await rawHttpExchange(
      url,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`,
    );
    expect(answer.toString('latin1')).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
  });

  it('answers a bad request that follows on a keep-alive connection once the previous answer is finished', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 50; i++) {
        const first = await rawRequest(url, '/slow-end', { agent });
        expect(first.body.toString()).toBe('hello');
        const bad = await rawRequest(url, '/a.b/\u00e9', { agent });
        expect(bad.status).toBe(400);
        expect(bad.headers['content-type']).toBe('text/plain; charset=utf-8');
      }
    } finally {
      agent.destroy();
    }
  });
});
