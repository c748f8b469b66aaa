import { describe, expect, it } from 'vitest';
import { HostSlots } from './host-slots';

describe('HostSlots', () => {
  it('serves waiters first come, first served among those whose host is under its limit', async () => {
    const slots = new HostSlots(2, 1);
    const order: string[] = [];
    expect(slots.tryAcquire('slow.test')).toBe(true);
    // A slot is free, but not for slow.test.
    expect(slots.tryAcquire('slow.test')).toBe(false);
    const waiters = [
      slots.wait('slow.test').then(() => order.push('slow.test 2')),
      slots.wait('slow.test').then(() => order.push('slow.test 3')),
    ];
    expect(slots.tryAcquire('other.test')).toBe(true);
    expect([slots.active, slots.waiting]).toEqual([2, 2]);
    // other.test's slot frees: slow.test is still at its limit, so nobody may take it.
    slots.release('other.test');
    await Promise.resolve();
    expect([slots.active, slots.waiting, order]).toEqual([1, 2, []]);
    slots.release('slow.test');
    await waiters[0];
    expect([slots.active, slots.waiting, order]).toEqual([1, 1, ['slow.test 2']]);
    slots.release('slow.test');
    await waiters[1];
    slots.release('slow.test');
    expect([slots.active, slots.waiting, order]).toEqual([0, 0, ['slow.test 2', 'slow.test 3']]);
  });

  it('drops a waiter whose signal fires, rejecting with the signal’s reason', async () => {
    const slots = new HostSlots(1, 1);
    slots.tryAcquire('a.test');
    const controller = new AbortController();
    const waiting = slots.wait('b.test', controller.signal).catch((error: unknown) => error);
    const reason = new DOMException('deadline', 'TimeoutError');
    controller.abort(reason);
    expect(await waiting).toBe(reason);
    expect(slots.waiting).toBe(0);
    slots.release('a.test');
    expect(slots.active).toBe(0);
  });
});
