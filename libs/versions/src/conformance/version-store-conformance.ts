import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock, waitUntil } from '@modproxy/testing';
import type { VersionStore, VersionStoreRetention } from '../version-store';

export interface VersionStoreUnderTest {
  store: VersionStore;
  /**
   * Whether the store's TTLs run on the clock it was given. Otherwise they run in real time
   * somewhere the test cannot move (Redis' own expiry).
   */
  usesClock: boolean;
  /** Frees what the store used (not the store itself: the suite closes it first). */
  cleanup?(): Promise<void>;
}

/** Makes a fresh, empty store with these retention settings, on `now` if it can take a clock. */
export type VersionStoreFactory = (
  retention: VersionStoreRetention,
  now: () => number,
) => Promise<VersionStoreUnderTest>;

/** A TTL that ends during the test. */
const SHORT_TTL_MS = 300;
/** A TTL that cannot end during the test. */
const LONG_TTL_MS = 3_600_000;

/**
 * The behaviour every VersionStore must have, so that the freshness engine works the same on
 * the embedded and the shared store. Time-based cases never sleep: the suite moves its clock
 * past the TTL, which ends the entry at once on a store that uses the clock, and waits for the
 * store's own expiry otherwise. An entry written with a long TTL beside it must survive that,
 * so each case shows that its entry ends at the TTL it was given and not at some other.
 */
export function describeVersionStoreConformance(name: string, create: VersionStoreFactory): void {
  describe(`${name} (VersionStore conformance)`, () => {
    let clock: ManualClock;
    let subject: VersionStoreUnderTest;
    let store: VersionStore;
    // Unique per test, so that stores that share a server cannot see each other's data.
    let module: string;

    beforeEach(async () => {
      clock = new ManualClock();
      subject = await create({}, clock.now);
      store = subject.store;
      module = `example.test/m${randomUUID().slice(0, 8)}/Mixed.Case-v2`;
    });
    afterEach(async () => {
      await store.close();
      await subject.cleanup?.();
    });

    /**
     * Checks an entry written with {@link SHORT_TTL_MS} at `writtenAt` (real time) while it must
     * still be there. On the suite's clock a failure always counts; in real time only if the TTL
     * cannot have ended by the time the check came back (a stalled machine is not a store bug).
     */
    async function whileLive(
      under: VersionStoreUnderTest,
      writtenAt: number,
      check: () => Promise<void>,
    ): Promise<void> {
      try {
        await check();
      } catch (error) {
        if (under.usesClock || Date.now() - writtenAt < SHORT_TTL_MS) throw error;
      }
    }

    /** Moves past {@link SHORT_TTL_MS}; then `ended` holds at once on the clock, or once the store expired it. */
    async function afterShortTtl(
      under: VersionStoreUnderTest,
      ended: () => Promise<boolean>,
      what: string,
    ): Promise<void> {
      clock.advance(SHORT_TTL_MS);
      if (under.usesClock) expect(await ended(), what).toBe(true);
      else await waitUntil(ended, { what });
    }

    it('knows nothing about a module it never saw', async () => {
      expect(await store.read('list', module)).toEqual({ observed: [], leased: false });
      expect(await store.read('latest', module, Date.now())).toEqual({ observed: [], leased: false });
    });

    it('keeps an answer per kind, byte for byte, and records requests only on an existing answer', async () => {
      const info = Buffer.from('{"Version":"v1.2.0","Time":"2024-01-01T00:00:00Z","Origin":{"VCS":"git"}}\n');
      await store.saveAnswer('latest', module, info, 1_000);
      await store.saveAnswer('list', module, Buffer.from('v1.0.0\nv1.2.0'), 2_000);

      const latest = await store.read('latest', module);
      expect(latest.answer).toEqual({ data: info, fetchedAt: 1_000, requestedAt: 1_000 });
      const touched = await store.read('list', module, 5_000);
      expect(touched.answer).toEqual({
        data: Buffer.from('v1.0.0\nv1.2.0'),
        fetchedAt: 2_000,
        requestedAt: 5_000,
      });
      expect((await store.read('list', module)).answer?.requestedAt).toBe(5_000);

      // A newer answer keeps the request time; a read of an absent answer does not create one.
      await store.saveAnswer('list', module, Buffer.from('v1.3.0'), 6_000);
      expect((await store.read('list', module)).answer).toEqual({
        data: Buffer.from('v1.3.0'),
        fetchedAt: 6_000,
        requestedAt: 5_000,
      });
      const other = `${module}/sub`;
      await store.read('list', other, 7_000);
      expect((await store.read('list', other)).answer).toBeUndefined();
    });

    it('holds a negative entry, 404 or 410, for its own TTL, and a fresh answer clears it', async () => {
      await store.saveAnswer('list', module, Buffer.from('v1.0.0'), 1_000);
      const writtenAt = Date.now();
      const missing = { kind: 'not-found' as const, message: 'no such module' };
      const gone = { kind: 'gone' as const, message: 'gone for good', detail: 'upstream answered 410' };
      await store.saveNotFound('list', module, missing, SHORT_TTL_MS);
      await store.saveNotFound('latest', module, gone, LONG_TTL_MS);
      await whileLive(subject, writtenAt, async () => {
        const entry = await store.read('list', module);
        expect(entry.notFound).toEqual(missing);
        expect(entry.answer?.data.toString()).toBe('v1.0.0');
      });
      await afterShortTtl(
        subject,
        async () => (await store.read('list', module)).notFound === undefined,
        'the short negative entry ends',
      );
      expect((await store.read('list', module)).answer?.data.toString()).toBe('v1.0.0');
      expect((await store.read('latest', module)).notFound).toEqual(gone);

      await store.saveNotFound('latest', module, gone, 60_000);
      await store.saveAnswer('latest', module, Buffer.from('{}'), 2_000);
      expect((await store.read('latest', module)).notFound).toBeUndefined();
    });

    it('holds a failure record for its TTL; an answer or a negative entry replaces it', async () => {
      const failure = { at: 1_234, kind: 'bad-gateway' as const, message: 'upstream answered 500' };
      // Retry-After and the detail come back as they were written.
      const unavailable = {
        at: 1_500,
        kind: 'unavailable' as const,
        message: 'upstream is busy',
        retryAfterSeconds: 30,
        detail: 'upstream answered 503 (Retry-After: 30)',
      };
      await store.saveFailure('list', `${module}/busy`, unavailable, LONG_TTL_MS);
      expect((await store.read('list', `${module}/busy`)).failure).toEqual(unavailable);
      const writtenAt = Date.now();
      await store.saveFailure('list', module, failure, SHORT_TTL_MS);
      await store.saveFailure('latest', module, { ...failure, message: 'kept' }, LONG_TTL_MS);
      await whileLive(subject, writtenAt, async () => {
        expect((await store.read('list', module)).failure).toEqual(failure);
      });
      await afterShortTtl(
        subject,
        async () => (await store.read('list', module)).failure === undefined,
        'the short failure record ends',
      );
      expect((await store.read('latest', module)).failure).toEqual({ ...failure, message: 'kept' });

      await store.saveFailure('list', module, failure, 60_000);
      await store.saveAnswer('list', module, Buffer.from('v1.0.0'), 3_000);
      expect((await store.read('list', module)).failure).toBeUndefined();
      await store.saveFailure('latest', module, failure, 60_000);
      await store.saveNotFound('latest', module, { kind: 'not-found', message: 'not found' }, 60_000);
      expect((await store.read('latest', module)).failure).toBeUndefined();
    });

    it('expires an answer without dropping it', async () => {
      await store.expire('list', module);
      expect((await store.read('list', module)).answer).toBeUndefined();
      await store.saveAnswer('list', module, Buffer.from('v1.0.0'), 9_000);
      await store.expire('list', module);
      expect((await store.read('list', module)).answer).toMatchObject({
        data: Buffer.from('v1.0.0'),
        fetchedAt: 0,
      });
    });

    it('observes versions atomically, for list reads only, and drops negative entries', async () => {
      await store.saveNotFound('list', module, { kind: 'not-found', message: 'not found' }, 60_000);
      await store.saveNotFound('latest', module, { kind: 'not-found', message: 'not found' }, 60_000);
      const versions = Array.from({ length: 50 }, (_, i) => `v1.${i}.0`);
      await Promise.all(versions.map((version) => store.observe(module, version)));
      await store.observe(module, 'v1.0.0');
      const list = await store.read('list', module);
      expect([...list.observed].sort()).toEqual([...versions].sort());
      expect(list.notFound).toBeUndefined();
      const latest = await store.read('latest', module);
      expect(latest.observed).toEqual([]);
      expect(latest.notFound).toBeUndefined();
    });

    it('forgets observed versions after the observed TTL', async () => {
      const short = await create({ observedTtlMs: SHORT_TTL_MS }, clock.now);
      const kept = `${module}/kept`;
      try {
        const writtenAt = Date.now();
        await short.store.observe(module, 'v9.0.0');
        await store.observe(kept, 'v9.0.0');
        await whileLive(short, writtenAt, async () => {
          expect((await short.store.read('list', module)).observed).toEqual(['v9.0.0']);
        });
        await afterShortTtl(
          short,
          async () => (await short.store.read('list', module)).observed.length === 0,
          'the observed versions are forgotten',
        );
        expect((await store.read('list', kept)).observed).toEqual(['v9.0.0']);
      } finally {
        await short.store.close();
        await short.cleanup?.();
      }
    });

    it('drops answers after the retention time', async () => {
      const short = await create({ retainMs: SHORT_TTL_MS }, clock.now);
      const kept = `${module}/kept`;
      try {
        const writtenAt = Date.now();
        await short.store.saveAnswer('list', module, Buffer.from('v1.0.0'), clock.now());
        await store.saveAnswer('list', kept, Buffer.from('v1.0.0'), clock.now());
        await whileLive(short, writtenAt, async () => {
          expect((await short.store.read('list', module)).answer).toBeDefined();
        });
        await afterShortTtl(
          short,
          async () => (await short.store.read('list', module)).answer === undefined,
          'the answer is dropped',
        );
        expect((await store.read('list', kept)).answer?.data.toString()).toBe('v1.0.0');
      } finally {
        await short.store.close();
        await short.cleanup?.();
      }
    });

    it('invalidates a module: answers expired but kept, negative entries and failures dropped', async () => {
      await store.saveAnswer('list', module, Buffer.from('v1.0.0'), 5_000);
      await store.saveAnswer('latest', module, Buffer.from('{}'), 5_000);
      await store.saveNotFound('list', module, { kind: 'not-found', message: 'not found' }, 60_000);
      await store.saveFailure('latest', module, { at: 1, kind: 'timeout', message: 'slow' }, 60_000);
      await store.invalidate(module);
      const list = await store.read('list', module);
      const latest = await store.read('latest', module);
      expect(list).toMatchObject({ answer: { fetchedAt: 0, data: Buffer.from('v1.0.0') } });
      expect(list.notFound).toBeUndefined();
      expect(latest).toMatchObject({ answer: { fetchedAt: 0, data: Buffer.from('{}') } });
      expect(latest.failure).toBeUndefined();
    });

    it('grants a lease to exactly one of many contenders, and only its holder releases it', async () => {
      const tokens = Array.from({ length: 20 }, () => randomUUID());
      const granted = await Promise.all(
        tokens.map((token) => store.acquireLease('list', module, token, 60_000)),
      );
      expect(granted.filter(Boolean)).toHaveLength(1);
      const holder = tokens[granted.indexOf(true)] ?? '';
      expect((await store.read('list', module)).leased).toBe(true);
      expect((await store.read('latest', module)).leased).toBe(false);

      await store.releaseLease('list', module, tokens.find((token) => token !== holder) ?? '');
      expect((await store.read('list', module)).leased).toBe(true);
      await store.releaseLease('list', module, holder);
      expect((await store.read('list', module)).leased).toBe(false);
      expect(await store.acquireLease('list', module, 'next', 60_000)).toBe(true);
    });

    it('ends a lease whose holder never released it', async () => {
      const writtenAt = Date.now();
      expect(await store.acquireLease('latest', module, 'crashed', SHORT_TTL_MS)).toBe(true);
      expect(await store.acquireLease('list', module, 'holding', LONG_TTL_MS)).toBe(true);
      await whileLive(subject, writtenAt, async () => {
        expect(await store.acquireLease('latest', module, 'waiting', SHORT_TTL_MS)).toBe(false);
      });
      await afterShortTtl(
        subject,
        async () => !(await store.read('latest', module)).leased,
        'the abandoned lease ends',
      );
      expect(await store.acquireLease('latest', module, 'waiting', LONG_TTL_MS)).toBe(true);
      expect(await store.acquireLease('list', module, 'waiting', LONG_TTL_MS)).toBe(false);
    });

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
