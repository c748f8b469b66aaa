import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { errors } from '@modproxy/errors';
import { decodeJobFailure, encodeJobFailure, jobFailureError } from './job-failure';

describe('job failures across the queue', () => {
  it('keep the kind, the message and Retry-After, and never the operator-only detail', () => {
    const failure = errors.unavailable(
      'upstream.goproxy.zip',
      'example.test/a@v1.0.0: upstream asked us to wait',
      {
        detail: 'http://127.0.0.1:1/example.test/a/@v/v1.0.0.zip answered 429',
        retryAfterSeconds: 30,
      },
    );
    const reason = encodeJobFailure(failure);
    expect(reason).toBe('[unavailable retry-after=30] example.test/a@v1.0.0: upstream asked us to wait');
    const back = decodeJobFailure(reason, 'queue.fetch', { module: 'example.test/a', version: 'v1.0.0' });
    expect(back).toMatchObject({
      kind: 'unavailable',
      op: 'queue.fetch',
      message: 'example.test/a@v1.0.0: upstream asked us to wait',
      retryAfterSeconds: 30,
      module: 'example.test/a',
      version: 'v1.0.0',
    });
    expect(back.detail).toBeUndefined();
  });

  it('read a reason that is not ours (a crash, a stalled job) as internal, with the reason kept as detail', () => {
    const back = decodeJobFailure('job stalled more than allowable limit', 'queue.fetch');
    expect(back.kind).toBe('internal');
    expect(back.message).toBe('the job failed');
    expect(back.detail).toBe('job stalled more than allowable limit');
    expect(decodeJobFailure('[sometimes] x', 'queue.fetch').kind).toBe('internal');
  });

  it('fail at once for what another attempt cannot mend, and retry the rest', () => {
    for (const error of [
      errors.notFound('op', 'no such version'),
      errors.gone('op', 'gone'),
      errors.invalidArgument('op', 'bad'),
      errors.forbidden('op', 'denied'),
    ]) {
      expect(jobFailureError(error)).toBeInstanceOf(UnrecoverableError);
    }
    for (const error of [
      errors.badGateway('op', 'upstream failed'),
      errors.timeout('op', 'too slow'),
      errors.unavailable('op', 'later'),
      errors.internal('op', 'oops'),
    ]) {
      expect(jobFailureError(error)).not.toBeInstanceOf(UnrecoverableError);
    }
  });
});
