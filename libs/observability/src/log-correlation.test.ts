import { PassThrough } from 'node:stream';
import { context, trace } from '@opentelemetry/api';
import { afterAll, describe, expect, it } from 'vitest';
import { SecretRedactor } from '@modproxy/config';
import { startInMemoryTracing } from '@modproxy/testing';
import { createLogger, type Logger, withLogFields } from './index';

const tracing = startInMemoryTracing();
afterAll(() => tracing.stop());

async function linesOf(write: (logger: Logger) => Promise<void> | void, redactor?: SecretRedactor) {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  const logger = createLogger({ service: 'proxy', destination: out, ...(redactor ? { redactor } : {}) });
  await write(logger);
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

describe('log correlation', () => {
  it('puts the active span’s trace and span ids on every line written inside it, also after awaits', async () => {
    const span = trace.getTracer('test').startSpan('GET zip');
    const { trace_id, span_id } = {
      trace_id: span.spanContext().traceId,
      span_id: span.spanContext().spanId,
    };
    const { lines } = await linesOf(async (logger) => {
      logger.info('before');
      await context.with(trace.setSpan(context.active(), span), async () => {
        logger.info('inside');
        await new Promise((resolve) => setTimeout(resolve, 1));
        logger.child({ module: 'example.com/m' }).warn('after an await');
      });
      logger.info('after');
    });
    span.end();
    expect(lines[0]).not.toHaveProperty('trace_id');
    expect(lines[1]).toMatchObject({ msg: 'inside', trace_id, span_id, trace_flags: '01' });
    expect(lines[2]).toMatchObject({ msg: 'after an await', trace_id, span_id, module: 'example.com/m' });
    expect(lines[3]).not.toHaveProperty('trace_id');
  });

  it('puts the request id on the lines of the request only, nested scopes adding to it', async () => {
    const { lines } = await linesOf(async (logger) => {
      await Promise.all([
        withLogFields({ request_id: 'req-a' }, async () => {
          await new Promise((resolve) => setTimeout(resolve, 2));
          logger.info('a');
        }),
        withLogFields({ request_id: 'req-b' }, async () => {
          await withLogFields({ job: 'fetch' }, async () => logger.info('b'));
        }),
      ]);
      logger.info('none');
    });
    expect(lines.find((line) => line['msg'] === 'a')).toMatchObject({ request_id: 'req-a' });
    expect(lines.find((line) => line['msg'] === 'b')).toMatchObject({ request_id: 'req-b', job: 'fetch' });
    expect(lines.find((line) => line['msg'] === 'none')).not.toHaveProperty('request_id');
  });

  it('still cleans those lines of secrets', async () => {
    const token = 'storage-token-0123456789';
    const span = trace.getTracer('test').startSpan('save');
    const { text, lines } = await linesOf(
      (logger) =>
        withLogFields({ request_id: `id-${token}` }, () =>
          context.with(trace.setSpan(context.active(), span), () =>
            logger.warn({ detail: `refused ${token}` }, `token ${token}`),
          ),
        ),
      new SecretRedactor([token]),
    );
    span.end();
    expect(lines[0]).toMatchObject({
      request_id: 'id-[redacted]',
      detail: 'refused [redacted]',
      trace_id: span.spanContext().traceId,
    });
    expect(text).not.toContain(token);
  });
});
