import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DatabaseReadiness } from './database-readiness';

/** A database whose next pings answer as the test says: at once, late, or never. */
function database() {
  const behaviours: Array<'ok' | 'fail' | 'hang'> = [];
  let pings = 0;
  return {
    next: (...next: Array<'ok' | 'fail' | 'hang'>) => behaviours.push(...next),
    get pings() {
      return pings;
    },
    ping: (signal: AbortSignal) => {
      pings += 1;
      const behaviour = behaviours.shift() ?? 'ok';
      if (behaviour === 'ok') return Promise.resolve();
      if (behaviour === 'fail') return Promise.reject(new Error('connection refused'));
      // Hangs until its deadline aborts it, as a driver that honours the signal does.
      return new Promise<void>((_, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
      );
    },
  };
}

describe('DatabaseReadiness', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('stays ready through fewer consecutive failed pings than the threshold, each cut at its own deadline', async () => {
    const db = database();
    const changes: boolean[] = [];
    const readiness = new DatabaseReadiness({
      ping: db.ping,
      intervalMs: 1_000,
      timeoutMs: 500,
      failureThreshold: 3,
      onChange: (ready) => changes.push(ready),
    });
    await readiness.start();
    db.next('hang', 'fail', 'ok', 'hang', 'hang', 'ok');
    await vi.advanceTimersByTimeAsync(1_000 + 500); // hang, cut at 500 ms
    expect(readiness.consecutiveFailures).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000); // fail
    expect(readiness.consecutiveFailures).toBe(2);
    expect(readiness.ready).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000); // ok: the count starts again
    expect(readiness.consecutiveFailures).toBe(0);
    await vi.advanceTimersByTimeAsync(2 * 1_500); // hang, hang
    expect(readiness.consecutiveFailures).toBe(2);
    expect(readiness.ready).toBe(true);
    expect(changes).toEqual([]);
    readiness.stop();
  });

  it('turns off at the threshold-th failure in a row and back on at the first success', async () => {
    const db = database();
    const changes: Array<[boolean, number]> = [];
    const readiness = new DatabaseReadiness({
      ping: db.ping,
      intervalMs: 1_000,
      timeoutMs: 500,
      failureThreshold: 3,
      onChange: (ready) => changes.push([ready, readiness.consecutiveFailures]),
    });
    await readiness.start();
    db.next('hang', 'hang', 'hang', 'hang', 'ok');
    await vi.advanceTimersByTimeAsync(2 * 1_500);
    expect(readiness.ready).toBe(true);
    await vi.advanceTimersByTimeAsync(1_500);
    expect(readiness.ready).toBe(false);
    await vi.advanceTimersByTimeAsync(1_500);
    expect(readiness.ready).toBe(false);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(readiness.ready).toBe(true);
    expect(changes).toEqual([
      [false, 3],
      [true, 0],
    ]);
    readiness.stop();
  });

  it('never overlaps pings, and cuts a ping whose driver ignores the deadline', async () => {
    let calls = 0;
    const readiness = new DatabaseReadiness({
      // The first answers; the others ignore their signal and never settle.
      ping: () => (++calls === 1 ? Promise.resolve() : new Promise<void>(() => undefined)),
      intervalMs: 100,
      timeoutMs: 1_000,
      failureThreshold: 2,
    });
    await readiness.start();
    await vi.advanceTimersByTimeAsync(100 + 1_000);
    expect(readiness.consecutiveFailures).toBe(1);
    await vi.advanceTimersByTimeAsync(100 + 1_000);
    expect(readiness.ready).toBe(false);
    // An interval timer would have started a new ping every 100 ms on top of the hanging ones.
    expect(calls).toBe(3);
    readiness.stop();
  });
});
