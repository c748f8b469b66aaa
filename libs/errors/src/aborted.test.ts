import { describe, expect, it } from 'vitest';
import { abortedByDeadline, abortedError, throwIfAborted, waitUnlessAborted } from './index';

describe('abortedError', () => {
  it('is timeout when a deadline fired the signal, with the reason as cause', () => {
    const signal = AbortSignal.abort(new DOMException('the call deadline passed', 'TimeoutError'));
    expect(abortedByDeadline(signal)).toBe(true);
    const error = abortedError('storage.grpc.info', signal, { module: 'a.b/c', version: 'v1.0.0' });
    expect(error).toMatchObject({
      kind: 'timeout',
      op: 'storage.grpc.info',
      message: 'the call deadline passed',
      module: 'a.b/c',
      version: 'v1.0.0',
    });
    expect(error.cause).toBe(signal.reason);
  });

  it('is cancelled when the caller went away, whatever the reason is', () => {
    const controller = new AbortController();
    controller.abort();
    expect(abortedByDeadline(controller.signal)).toBe(false);
    expect(abortedError('op', controller.signal)).toMatchObject({ kind: 'cancelled' });
    expect(abortedError('op', AbortSignal.abort('gone'))).toMatchObject({
      kind: 'cancelled',
      message: 'the operation was aborted',
    });
  });

  it('throwIfAborted throws only once the signal fired', () => {
    const controller = new AbortController();
    expect(() => throwIfAborted('op', controller.signal)).not.toThrow();
    expect(() => throwIfAborted('op', undefined)).not.toThrow();
    controller.abort(new DOMException('late', 'TimeoutError'));
    expect(() => throwIfAborted('op', controller.signal)).toThrow(
      expect.objectContaining({ kind: 'timeout' }),
    );
  });
});

describe('waitUnlessAborted', () => {
  it('lets one waiter leave with its own error while the shared work goes on for the others', async () => {
    let finish: (value: string) => void = () => undefined;
    const work = new Promise<string>((resolve) => (finish = resolve));
    const leaving = new AbortController();
    const left = waitUnlessAborted(work, leaving.signal, (signal) => abortedError('test.wait', signal));
    const staying = waitUnlessAborted(work, new AbortController().signal, (signal) =>
      abortedError('test.wait', signal),
    );
    leaving.abort();
    await expect(left).rejects.toMatchObject({ kind: 'cancelled', op: 'test.wait' });
    finish('done');
    expect(await staying).toBe('done');
    // An already fired signal never waits.
    await expect(
      waitUnlessAborted(work, AbortSignal.abort(), (signal) => abortedError('test.wait', signal)),
    ).rejects.toMatchObject({ kind: 'cancelled' });
  });
});
