import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errors } from '@modproxy/errors';
import { createHttpMetrics, createLogger } from '@modproxy/observability';
import { closeHttp, listenHttp } from './http-server';
import { requestIdOf } from './request-id';
import { createServiceApp, finishServiceApp } from './service-app';

let server: Server;
let url: string;
const lines: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').trim().split('\n')) lines.push(JSON.parse(line));
      done();
    },
  });
  const logger = createLogger({ service: 'test', level: 'debug', destination });
  const app = createServiceApp({
    logger,
    metrics: createHttpMetrics('test'),
    readiness: async () => 'ok',
    isShuttingDown: () => false,
  });
  // Code deep under a request logs with the process's logger, not one made for the request.
  app.get('/work/:name', async (req, res) => {
    res.locals['route'] = 'work';
    await new Promise((resolve) => setTimeout(resolve, Number(req.query['ms'] ?? 0)));
    logger.info({ name: req.params['name'] }, 'worked');
    res.send('done');
  });
  app.get('/fail', async () => {
    await Promise.resolve();
    throw errors.badGateway('upstream.goproxy.zip', 'upstream failed: 503');
  });
  server = createServer(finishServiceApp(app, logger));
  url = await listenHttp(server, 0, '127.0.0.1');
});

afterAll(() => closeHttp(server, 1_000));

const linesOf = (requestId: string) => lines.filter((line) => line['request_id'] === requestId);

describe('request ids', () => {
  it('keeps a sane X-Request-Id, echoes it, and puts it on every line of that request only', async () => {
    const [slow, fast] = await Promise.all([
      fetch(`${url}/work/slow?ms=30`, { headers: { 'X-Request-Id': 'lb-7f3a2c:0001' } }),
      fetch(`${url}/work/fast`, { headers: { 'X-Request-Id': '5d1e0a3e-2f7b-4c4e-9b1e-2b8f0e6c1a77' } }),
    ]);
    expect(slow.headers.get('x-request-id')).toBe('lb-7f3a2c:0001');
    expect(fast.headers.get('x-request-id')).toBe('5d1e0a3e-2f7b-4c4e-9b1e-2b8f0e6c1a77');
    await slow.text();
    await fast.text();
    expect(linesOf('lb-7f3a2c:0001').map((line) => [line['msg'], line['name'] ?? line['route']])).toEqual([
      ['worked', 'slow'],
      ['request', 'work'],
    ]);
    expect(
      linesOf('5d1e0a3e-2f7b-4c4e-9b1e-2b8f0e6c1a77').map((line) => line['name'] ?? line['route']),
    ).toEqual(['fast', 'work']);
  });

  it('makes a new id when there is none or it is not sane, and logs failures with it', async () => {
    const answers = await Promise.all([
      fetch(`${url}/fail`),
      fetch(`${url}/fail`, { headers: { 'X-Request-Id': 'x'.repeat(129) } }),
      fetch(`${url}/fail`, { headers: { 'X-Request-Id': 'id with spaces' } }),
      fetch(`${url}/fail`, {
        headers: [
          ['X-Request-Id', 'a'],
          ['X-Request-Id', 'b'],
        ],
      }),
    ]);
    const ids = answers.map((answer) => answer.headers.get('x-request-id') ?? '');
    for (const id of ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(4);
    expect(answers.map((answer) => answer.status)).toEqual([502, 502, 502, 502]);
    for (const id of ids) {
      expect(linesOf(id).map((line) => line['msg'])).toEqual(['request failed', 'request']);
    }
  });

  it('accepts what request ids are made of, nothing else', () => {
    for (const id of ['abc', 'Root=1-5759e988-bd862e3fe1be46a994272793', 'a+b/c=', 'x'.repeat(128)]) {
      expect(requestIdOf(id)).toBe(id);
    }
    for (const id of ['', 'a\nb', 'a,b', '<script>', 'x'.repeat(129), 'ünïcode']) {
      expect(requestIdOf(id)).not.toBe(id);
    }
    expect(requestIdOf(['a', 'b'])).not.toBe('a');
  });
});
