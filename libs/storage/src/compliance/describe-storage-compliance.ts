import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isModuleError, type ErrorKind } from '@modproxy/errors';
import type { CatalogPage, IndexPage, ModuleStorage, ModuleVersionRef, SaveInput } from '../module-storage';
import {
  failingStream,
  patternBuffer,
  patternSha256,
  patternStream,
  readAll,
  sha256Hex,
  stalledStream,
  streamDigest,
} from './test-streams';

/** A fresh, empty storage for one test, and how to get rid of it. */
export interface StorageUnderTest {
  storage: ModuleStorage;
  /** Closes the storage and removes whatever it stored. */
  cleanup(): Promise<void>;
}

export interface StorageComplianceOptions {
  /** Size of the zip in the streamed round-trip case. Default 32 MiB. */
  largeZipBytes?: number;
  /** Size of an extra, slow round trip (e.g. 200 MiB); the case is skipped when undefined. */
  hugeZipBytes?: number;
  /** Time limit for the huge round trip. Default 10 minutes. */
  hugeZipTimeoutMs?: number;
}

const MiB = 1024 * 1024;

/** One version's content, small and recognisable by `tag`. */
interface Fixture extends ModuleVersionRef {
  info: Buffer;
  mod: Buffer;
  zip: Buffer;
}

function fixture(module: string, version: string, tag = `${module}@${version}`): Fixture {
  return {
    module,
    version,
    info: Buffer.from(`${JSON.stringify({ Version: version, Time: '2024-01-02T03:04:05Z', Tag: tag })}\n`),
    mod: Buffer.from(`module ${module}\n\n// ${tag} — ünïcode\ngo 1.22\n`),
    // Every byte value, then bytes that differ per tag.
    zip: Buffer.concat([
      Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
      Buffer.from(`${tag}\n`),
      patternBuffer(1500, hashSeed(tag)),
    ]),
  };
}

function hashSeed(text: string): number {
  let h = 2166136261;
  for (const c of Buffer.from(text)) h = Math.imul(h ^ c, 16777619) >>> 0;
  return h;
}

function saveInput(f: Fixture, extra: Partial<SaveInput> = {}): SaveInput {
  return {
    module: f.module,
    version: f.version,
    info: Buffer.from(f.info),
    mod: Buffer.from(f.mod),
    zip: Readable.from([Buffer.from(f.zip)], { objectMode: false }),
    ...extra,
  };
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Asserts that `promise` rejects with a ModuleError of `kind` (showing the actual error otherwise). */
async function expectKind(promise: Promise<unknown>, kind: ErrorKind, what = ''): Promise<void> {
  const error = await caught(promise);
  expect(isModuleError(error) ? error.kind : error, `${what} should fail with ${kind}`).toBe(kind);
}

/** Byte order, spelled out independently of the code under test. */
function byteOrder(a: ModuleVersionRef, b: ModuleVersionRef): number {
  return (
    Buffer.compare(Buffer.from(a.module), Buffer.from(b.module)) ||
    Buffer.compare(Buffer.from(a.version), Buffer.from(b.version))
  );
}

async function inBatches<T>(
  items: readonly T[],
  size: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

async function allPages(storage: ModuleStorage, pageSize: number): Promise<CatalogPage[]> {
  const pages: CatalogPage[] = [];
  let pageToken: string | undefined;
  do {
    const page = await storage.catalog({ pageSize, ...(pageToken === undefined ? {} : { pageToken }) });
    pages.push(page);
    pageToken = page.nextPageToken;
    if (pages.length > 100_000) throw new Error('catalog paging does not terminate');
  } while (pageToken !== undefined);
  return pages;
}

/**
 * The behaviour every ModuleStorage backend must show, as a vitest suite. Each case gets a
 * fresh storage from `makeStorage` and only talks to it through the port, so the same cases
 * run against memory, disk, a database or a remote storage service.
 */
export function describeStorageCompliance(
  name: string,
  makeStorage: () => Promise<StorageUnderTest>,
  options: StorageComplianceOptions = {},
): void {
  const largeZipBytes = options.largeZipBytes ?? 32 * MiB;
  const { hugeZipBytes } = options;

  describe(`ModuleStorage compliance: ${name}`, () => {
    let underTest: StorageUnderTest | undefined;
    let storage: ModuleStorage;

    beforeEach(async () => {
      underTest = await makeStorage();
      storage = underTest.storage;
    });

    afterEach(async () => {
      const current = underTest;
      underTest = undefined;
      await current?.cleanup();
    });

    async function save(f: Fixture, extra: Partial<SaveInput> = {}): Promise<void> {
      await storage.save(saveInput(f, extra));
    }

    async function expectStored(f: Fixture): Promise<void> {
      expect(await storage.exists(f.module, f.version)).toBe(true);
      expect((await storage.info(f.module, f.version)).equals(f.info), 'info bytes').toBe(true);
      expect((await storage.mod(f.module, f.version)).equals(f.mod), 'mod bytes').toBe(true);
      const zip = await storage.zip(f.module, f.version);
      expect(zip.size).toBe(f.zip.length);
      expect((await readAll(zip.stream)).equals(f.zip), 'zip bytes').toBe(true);
    }

    async function expectMissing(module: string, version: string): Promise<void> {
      const at = `${module}@${version}`;
      expect(await storage.exists(module, version), `exists ${at}`).toBe(false);
      await expectKind(storage.info(module, version), 'not-found', `info ${at}`);
      await expectKind(storage.mod(module, version), 'not-found', `mod ${at}`);
      await expectKind(storage.zip(module, version), 'not-found', `zip ${at}`);
      expect(await storage.list(module), `list ${module}`).not.toContain(version);
    }

    describe('missing content', () => {
      it('reports every version of an unknown module as not found', async () => {
        await expectMissing('example.com/nothing', 'v1.0.0');
        await expectKind(storage.delete('example.com/nothing', 'v1.0.0'), 'not-found', 'delete');
        expect(await storage.list('example.com/nothing')).toEqual([]);
      });

      it('reports a missing version of a stored module as not found', async () => {
        await save(fixture('example.com/present', 'v1.0.0'));
        await expectMissing('example.com/present', 'v1.0.1');
        await expectKind(storage.delete('example.com/present', 'v1.0.1'), 'not-found', 'delete');
        expect(await storage.list('example.com/present')).toEqual(['v1.0.0']);
      });
    });

    describe('save and read', () => {
      it('round-trips info, mod and zip byte for byte', async () => {
        const f = fixture('example.com/round/trip', 'v1.2.3');
        expect(await storage.exists(f.module, f.version)).toBe(false);
        await save(f);
        await expectStored(f);
        expect(await storage.list(f.module)).toEqual(['v1.2.3']);
      });

      it('gives a zip’s SHA-256 up front only as the digest of its bytes', async () => {
        const f = fixture('example.com/digest', 'v1.0.0');
        await save(f);
        const zip = await storage.zip(f.module, f.version);
        const bytes = await readAll(zip.stream);
        // Optional: a backend that does not know it says nothing, one that does must be right.
        if (zip.sha256 !== undefined) expect(zip.sha256.toLowerCase()).toBe(sha256Hex(bytes));
        expect(bytes.equals(f.zip)).toBe(true);
      });

      it('keeps its own copy of the bytes it was given', async () => {
        const f = fixture('example.com/copy', 'v1.0.0');
        const input = saveInput(f);
        await storage.save(input);
        input.info.fill(0);
        input.mod.fill(0);
        await expectStored(f);
        // And what it hands out is not its own copy either.
        (await storage.info(f.module, f.version)).fill(0);
        (await storage.mod(f.module, f.version)).fill(0);
        await expectStored(f);
      });

      it('accepts a zip whose SHA-256 matches zipSha256, in either letter case', async () => {
        const a = fixture('example.com/sum', 'v1.0.0');
        const b = fixture('example.com/sum', 'v1.0.1');
        await save(a, { zipSha256: sha256Hex(a.zip) });
        await save(b, { zipSha256: sha256Hex(b.zip).toUpperCase() });
        await expectStored(a);
        await expectStored(b);
      });

      it('stores a zip delivered in odd-sized chunks exactly', async () => {
        const size = 200_003;
        await storage.save({
          ...saveInput(fixture('example.com/chunks', 'v1.0.0')),
          zip: patternStream(size, 11, { chunkSize: 4093 }),
        });
        const zip = await storage.zip('example.com/chunks', 'v1.0.0');
        expect(zip.size).toBe(size);
        expect(await streamDigest(zip.stream)).toEqual({ sha256: await patternSha256(size, 11), size });
      });

      it('lets a zip stream be destroyed unread without harm', async () => {
        const f = fixture('example.com/unread', 'v1.0.0');
        await save(f);
        const zip = await storage.zip(f.module, f.version);
        zip.stream.destroy();
        await expectStored(f);
        await storage.delete(f.module, f.version);
        await expectMissing(f.module, f.version);
      });

      it('stores +incompatible versions', async () => {
        const f = fixture('example.com/old', 'v2.1.0+incompatible');
        await save(f);
        await expectStored(f);
        expect(await storage.list(f.module)).toEqual(['v2.1.0+incompatible']);
      });
    });

    describe('large zips', () => {
      it(`round-trips a ${largeZipBytes}-byte zip as a stream`, async () => {
        const sha256 = await patternSha256(largeZipBytes, 42);
        await storage.save({
          ...saveInput(fixture('example.com/large', 'v1.0.0')),
          zip: patternStream(largeZipBytes, 42),
          zipSha256: sha256,
        });
        const zip = await storage.zip('example.com/large', 'v1.0.0');
        expect(zip.size).toBe(largeZipBytes);
        expect(await streamDigest(zip.stream)).toEqual({ sha256, size: largeZipBytes });
      });

      it.runIf(hugeZipBytes !== undefined)(
        `round-trips a ${hugeZipBytes ?? 0}-byte zip as a stream`,
        async () => {
          const size = hugeZipBytes ?? 0;
          const sha256 = await patternSha256(size, 43);
          await storage.save({
            ...saveInput(fixture('example.com/huge', 'v1.0.0')),
            zip: patternStream(size, 43),
            zipSha256: sha256,
          });
          const zip = await storage.zip('example.com/huge', 'v1.0.0');
          expect(zip.size).toBe(size);
          expect(await streamDigest(zip.stream)).toEqual({ sha256, size });
        },
        options.hugeZipTimeoutMs ?? 600_000,
      );
    });

    describe('immutability', () => {
      it('refuses to save a stored version again and keeps the original', async () => {
        const original = fixture('example.com/immutable', 'v1.0.0', 'original');
        const other = fixture('example.com/immutable', 'v1.0.0', 'replacement');
        await save(original);
        await expectKind(storage.save(saveInput(other)), 'already-exists', 'second save');
        await expectStored(original);
        expect(await storage.list(original.module)).toEqual(['v1.0.0']);
      });

      it('lets exactly one of concurrent saves of a version win, whole', async () => {
        const module = 'example.com/race';
        const contenders = Array.from({ length: 8 }, (_, i) => ({
          info: Buffer.from(`{"Version":"v1.0.0","Contender":${i}}`),
          mod: Buffer.from(`module ${module}\n// contender ${i}\n`),
          size: 256 * 1024 + i * 1000,
          seed: 1000 + i,
        }));
        const results = await Promise.allSettled(
          contenders.map((c) =>
            storage.save({
              module,
              version: 'v1.0.0',
              info: c.info,
              mod: c.mod,
              zip: patternStream(c.size, c.seed, { chunkSize: 16 * 1024, interleave: true }),
            }),
          ),
        );
        const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
        expect(winners).toHaveLength(1);
        for (const r of results) {
          if (r.status === 'rejected')
            expect(isModuleError(r.reason) ? r.reason.kind : r.reason).toBe('already-exists');
        }
        const winner = contenders[winners[0] ?? -1];
        if (!winner) throw new Error('no winner');
        expect((await storage.info(module, 'v1.0.0')).equals(winner.info)).toBe(true);
        expect((await storage.mod(module, 'v1.0.0')).equals(winner.mod)).toBe(true);
        const zip = await storage.zip(module, 'v1.0.0');
        expect(zip.size).toBe(winner.size);
        expect(await streamDigest(zip.stream)).toEqual({
          sha256: await patternSha256(winner.size, winner.seed),
          size: winner.size,
        });
        expect(await storage.list(module)).toEqual(['v1.0.0']);
      });
    });

    describe('failed saves leave nothing behind', () => {
      it('rejects a zip that does not match zipSha256', async () => {
        const f = fixture('example.com/mismatch', 'v1.0.0');
        const wrong = sha256Hex(Buffer.concat([f.zip, Buffer.from('x')]));
        await expectKind(storage.save(saveInput(f, { zipSha256: wrong })), 'invalid-argument', 'save');
        await expectMissing(f.module, f.version);
        expect(await storage.list(f.module)).toEqual([]);
        // Nothing half-written blocks the next, correct save.
        await save(f, { zipSha256: sha256Hex(f.zip) });
        await expectStored(f);
      });

      it('rejects a zipSha256 that is not a SHA-256', async () => {
        const f = fixture('example.com/badsum', 'v1.0.0');
        await expectKind(storage.save(saveInput(f, { zipSha256: 'abc' })), 'invalid-argument', 'save');
        await expectMissing(f.module, f.version);
      });

      it('rejects a save whose zip stream fails halfway', async () => {
        const f = fixture('example.com/cutoff', 'v1.0.0');
        const error = await caught(storage.save({ ...saveInput(f), zip: failingStream(300 * 1024, 5) }));
        expect(isModuleError(error), `a ModuleError, got ${String(error)}`).toBe(true);
        await expectMissing(f.module, f.version);
        expect(await storage.list(f.module)).toEqual([]);
        await save(f);
        await expectStored(f);
      });
    });

    describe('version identity', () => {
      it('lists versions in Go version order', async () => {
        const module = 'example.com/order';
        const goOrder = [
          'v0.0.0-20200101000000-abcdefabcdef',
          'v0.1.0',
          'v1.2.3-alpha',
          'v1.2.3-pre',
          'v1.2.3-pre.1',
          'v1.2.3-pre.2',
          'v1.2.3-pre.10',
          'v1.2.3',
          'v1.2.4-0.20210101000000-0123456789ab',
          'v1.9.0',
          'v1.10.0',
          'v1.11.0-rc.1',
          'v1.11.0',
        ];
        const shuffled = [...goOrder].sort((a, b) => hashSeed(a) - hashSeed(b));
        expect(shuffled).not.toEqual(goOrder);
        for (const version of shuffled) await save(fixture(module, version));
        expect(await storage.list(module)).toEqual(goOrder);
      });

      it('keeps a module apart from its /v2 and from paths sharing its prefix', async () => {
        const saved: Fixture[] = [
          fixture('example.com/a/b', 'v1.0.0'),
          fixture('example.com/a/b', 'v1.1.0'),
          fixture('example.com/a/b/v2', 'v2.0.0'),
          fixture('example.com/a/b-other', 'v1.0.0'),
          fixture('example.com/a', 'v1.1.0'),
        ];
        for (const f of saved) await save(f);
        expect(await storage.list('example.com/a/b')).toEqual(['v1.0.0', 'v1.1.0']);
        expect(await storage.list('example.com/a/b/v2')).toEqual(['v2.0.0']);
        expect(await storage.list('example.com/a/b-other')).toEqual(['v1.0.0']);
        expect(await storage.list('example.com/a')).toEqual(['v1.1.0']);
        expect(await storage.list('example.com/a/bc')).toEqual([]);
        for (const f of saved) await expectStored(f);
        await expectMissing('example.com/a/b', 'v2.0.0');
        await expectMissing('example.com/a', 'v1.0.0');

        await storage.delete('example.com/a/b', 'v1.0.0');
        await expectStored(saved[3] as Fixture);
        expect(await storage.list('example.com/a/b-other')).toEqual(['v1.0.0']);
        expect(await storage.list('example.com/a/b')).toEqual(['v1.1.0']);
      });

      it('does not take v1.2.3-pre for v1.2.3-pre.1 or the other way round', async () => {
        const module = 'example.com/pre';
        const dotted = fixture(module, 'v1.2.3-pre.1');
        await save(dotted);
        await expectMissing(module, 'v1.2.3-pre');
        await expectMissing(module, 'v1.2.3');
        await expectKind(storage.delete(module, 'v1.2.3-pre'), 'not-found', 'delete');
        const plain = fixture(module, 'v1.2.3-pre');
        await save(plain);
        await expectStored(dotted);
        await expectStored(plain);
        expect(await storage.list(module)).toEqual(['v1.2.3-pre', 'v1.2.3-pre.1']);
      });

      it('keeps module paths and versions that differ only in letter case apart', async () => {
        const upper = fixture('github.com/Azure/Go', 'v1.0.0');
        const lower = fixture('github.com/azure/go', 'v1.0.0');
        const upperPre = fixture('github.com/azure/go', 'v1.1.0-RC1');
        const lowerPre = fixture('github.com/azure/go', 'v1.1.0-rc1');
        await save(upper);
        await expectMissing(lower.module, lower.version);
        await save(lower);
        await save(upperPre);
        await expectMissing(lowerPre.module, lowerPre.version);
        await save(lowerPre);
        for (const f of [upper, lower, upperPre, lowerPre]) await expectStored(f);
        expect(await storage.list('github.com/Azure/Go')).toEqual(['v1.0.0']);
        expect(await storage.list('github.com/azure/go')).toEqual(['v1.0.0', 'v1.1.0-RC1', 'v1.1.0-rc1']);
        expect(await storage.list('github.com/Azure/go')).toEqual([]);
        const { entries } = await storage.catalog({ pageSize: 100 });
        expect(entries).toEqual([
          { module: 'github.com/Azure/Go', version: 'v1.0.0' },
          { module: 'github.com/azure/go', version: 'v1.0.0' },
          { module: 'github.com/azure/go', version: 'v1.1.0-RC1' },
          { module: 'github.com/azure/go', version: 'v1.1.0-rc1' },
        ]);
      });
    });

    describe('delete', () => {
      it('removes one version, which may then be saved anew', async () => {
        const first = fixture('example.com/del', 'v1.0.0', 'first');
        const kept = fixture('example.com/del', 'v1.1.0');
        await save(first);
        await save(kept);
        await storage.delete(first.module, first.version);
        await expectMissing(first.module, first.version);
        await expectKind(storage.delete(first.module, first.version), 'not-found', 'second delete');
        expect(await storage.list(first.module)).toEqual(['v1.1.0']);
        await expectStored(kept);
        const again = fixture('example.com/del', 'v1.0.0', 'second');
        await save(again);
        await expectStored(again);
        expect(await storage.list(first.module)).toEqual(['v1.0.0', 'v1.1.0']);
      });

      it('leaves nothing of a module whose last version is deleted', async () => {
        const f = fixture('example.com/gone', 'v1.0.0');
        await save(f);
        await storage.delete(f.module, f.version);
        expect(await storage.list(f.module)).toEqual([]);
        expect(await storage.catalog({ pageSize: 10 })).toEqual({ entries: [] });
      });
    });

    describe('catalog', () => {
      it('is empty for an empty storage', async () => {
        expect(await storage.catalog({ pageSize: 10 })).toEqual({ entries: [] });
      });

      it('pages through a few hundred versions of many modules, each exactly once, in order', async () => {
        const modules = [
          'example.com/a',
          'example.com/a/v2',
          'example.com/a-b',
          'example.com/a.b',
          'example.com/a/b',
          'example.com/A',
          'example.com/Z',
          'example.com/z',
          'example.com/-dash',
          'example.com/x~y',
          'golang.org/x/mod',
          'gopkg.in/yaml.v3',
          ...Array.from({ length: 13 }, (_, i) => `example.org/m${i}`),
        ];
        const pool = [
          'v0.0.0-20200101000000-abcdefabcdef',
          'v0.1.0',
          'v1.0.0',
          'v1.0.1-pre',
          'v1.0.1-pre.1',
          'v1.0.1',
          'v1.2.0-RC1',
          'v1.2.0-rc1',
          'v1.9.0',
          'v1.10.0',
          'v1.11.0',
          'v1.100.0',
        ];
        const major = (module: string): number => Number(/(?:\/v|\.v)(\d+)$/.exec(module)?.[1] ?? '1');
        const all: ModuleVersionRef[] = modules.flatMap((module) =>
          pool.map((v) => ({
            module,
            version: major(module) > 1 ? v.replace(/^v[01]\./, `v${major(module)}.`) : v,
          })),
        );
        const unique = new Map(all.map((e) => [`${e.module}@${e.version}`, e]));
        const expected = [...unique.values()].sort(byteOrder);
        expect(expected.length).toBe(300);
        await inBatches(expected, 8, async (e) => save(fixture(e.module, e.version)));

        for (const pageSize of [7, 100, 300, 1000]) {
          const pages = await allPages(storage, pageSize);
          expect(pages.length, `pages of ${pageSize}`).toBe(Math.ceil(expected.length / pageSize));
          pages.forEach((page, i) => {
            const last = i === pages.length - 1;
            expect(page.entries.length, `page ${i} of size ${pageSize}`).toBe(
              last ? expected.length - i * pageSize : pageSize,
            );
            expect(page.nextPageToken === undefined, `token on page ${i} of size ${pageSize}`).toBe(last);
          });
          expect(pages.flatMap((p) => p.entries)).toEqual(expected);
        }
      });

      it('resumes after the entry a token names even when that entry is gone', async () => {
        const versions = ['v1.0.0', 'v1.1.0', 'v1.2.0', 'v1.3.0', 'v1.4.0'];
        for (const v of versions) await save(fixture('example.com/resume', v));
        const first = await storage.catalog({ pageSize: 2 });
        expect(first.entries.map((e) => e.version)).toEqual(['v1.0.0', 'v1.1.0']);
        const token = first.nextPageToken;
        expect(typeof token).toBe('string');
        await storage.delete('example.com/resume', 'v1.1.0');
        await save(fixture('example.com/a-before', 'v1.0.0'));
        const second = await storage.catalog({ pageSize: 2, pageToken: token });
        expect(second.entries.map((e) => e.version)).toEqual(['v1.2.0', 'v1.3.0']);
        const third = await storage.catalog({ pageSize: 2, pageToken: second.nextPageToken });
        expect(third).toEqual({ entries: [{ module: 'example.com/resume', version: 'v1.4.0' }] });
      });

      it('rejects page sizes out of range and tokens it did not make', async () => {
        await save(fixture('example.com/cat', 'v1.0.0'));
        for (const pageSize of [0, -1, 1.5, 10_001, Number.NaN, Number.POSITIVE_INFINITY]) {
          await expectKind(storage.catalog({ pageSize }), 'invalid-argument', `pageSize ${pageSize}`);
        }
        expect((await storage.catalog({ pageSize: 10_000 })).entries).toHaveLength(1);
        expect((await storage.catalog({ pageSize: 1 })).entries).toHaveLength(1);
        const forged = [
          'not a token',
          'abc',
          '!!!!',
          Buffer.from('["example.com/cat"]').toString('base64url'),
          Buffer.from('{"module":1}').toString('base64url'),
          Buffer.from('["../x","v1.0.0"]').toString('base64url'),
        ];
        for (const pageToken of forged) {
          await expectKind(
            storage.catalog({ pageSize: 10, pageToken }),
            'invalid-argument',
            `token ${pageToken}`,
          );
        }
      });
    });

    describe('index', () => {
      /** Every page of the index from `since` on, with the given page size. */
      async function indexPages(limit: number, since?: Date): Promise<IndexPage[]> {
        const pages: IndexPage[] = [];
        let pageToken: string | undefined;
        do {
          const page = await storage.index({
            limit,
            ...(since === undefined ? {} : { since }),
            ...(pageToken === undefined ? {} : { pageToken }),
          });
          pages.push(page);
          pageToken = page.nextPageToken;
          if (pages.length > 100_000) throw new Error('index paging does not terminate');
        } while (pageToken !== undefined);
        return pages;
      }

      const key = (e: ModuleVersionRef) => `${e.module}@${e.version}`;

      it('is empty for an empty storage', async () => {
        expect(await storage.index({ limit: 10 })).toEqual({ entries: [] });
      });

      it('lists versions in the order they were stored, each with the time of its save', async () => {
        // Saved in an order that is neither the catalog's nor Go's.
        const saved = [
          fixture('example.com/zz', 'v1.0.0'),
          fixture('example.com/aa', 'v1.1.0'),
          fixture('example.com/mm', 'v0.1.0'),
          fixture('example.com/aa', 'v1.0.0'),
          fixture('example.com/zz', 'v0.9.0'),
        ];
        const windows: Array<{ before: number; after: number }> = [];
        for (const f of saved) {
          const before = Date.now();
          await save(f);
          windows.push({ before, after: Date.now() });
        }
        const { entries, nextPageToken } = await storage.index({ limit: 100 });
        expect(nextPageToken).toBeUndefined();
        expect(entries.map(key).sort()).toEqual(saved.map(key).sort());
        const byKey = new Map(entries.map((e) => [key(e), e]));
        const times = saved.map((f) => byKey.get(key(f))?.storedAt.getTime() ?? Number.NaN);
        saved.forEach((f, i) => {
          const at = times[i] ?? Number.NaN;
          const window = windows[i] ?? { before: 0, after: 0 };
          // File system clocks tick coarsely (a few ms); a second either side is still "this save".
          expect(at, `storedAt of ${key(f)}`).toBeGreaterThanOrEqual(window.before - 1_000);
          expect(at, `storedAt of ${key(f)}`).toBeLessThanOrEqual(window.after + 1_000);
          if (i > 0)
            expect(at, `${key(f)} stored after the one before`).toBeGreaterThanOrEqual(times[i - 1] ?? 0);
        });
        // Stored time first; equal times (a coarse clock) in catalog order.
        const expected = [...entries].sort(
          (a, b) => a.storedAt.getTime() - b.storedAt.getTime() || byteOrder(a, b),
        );
        expect(entries).toEqual(expected);
      });

      it('pages through many versions, each exactly once, in index order', async () => {
        const all = Array.from({ length: 60 }, (_, i) =>
          fixture(`example.org/i${String(i % 7)}`, `v1.${String(Math.floor(i / 7))}.${String(i % 3)}`),
        );
        const unique = [...new Map(all.map((f) => [key(f), f])).values()];
        await inBatches(unique, 6, (f) => save(f));
        const [whole] = await indexPages(10_000);
        const everything = whole?.entries ?? [];
        expect(everything).toHaveLength(unique.length);
        for (const limit of [1, 7, unique.length, 1000]) {
          const pages = await indexPages(limit);
          expect(pages.length, `pages of ${limit}`).toBe(Math.ceil(unique.length / limit));
          pages.forEach((page, i) => {
            expect(page.nextPageToken === undefined, `token on page ${i} of ${limit}`).toBe(
              i === pages.length - 1,
            );
          });
          expect(pages.flatMap((p) => p.entries)).toEqual(everything);
        }
      });

      it('starts at since, inclusive, and resumes after a token even when its entry is gone', async () => {
        await save(fixture('example.com/early', 'v1.0.0'));
        await save(fixture('example.com/early', 'v1.1.0'));
        const { entries: firstTwo } = await storage.index({ limit: 10 });
        const cut = firstTwo[1]?.storedAt;
        if (!cut) throw new Error('no second entry');
        // A later save never gets an earlier time than one before it.
        await save(fixture('example.com/late', 'v1.0.0'));
        await save(fixture('example.com/late', 'v1.1.0'));
        const since = (await indexPages(10, cut)).flatMap((p) => p.entries);
        expect(since.map(key)).toContain('example.com/early@v1.1.0');
        expect(since.map(key)).toContain('example.com/late@v1.0.0');
        expect(since.map(key)).toContain('example.com/late@v1.1.0');
        for (const e of since) expect(e.storedAt.getTime()).toBeGreaterThanOrEqual(cut.getTime());
        const future = new Date(Date.now() + 3_600_000);
        expect(await storage.index({ limit: 10, since: future })).toEqual({ entries: [] });

        const first = await storage.index({ limit: 2 });
        expect(first.entries).toHaveLength(2);
        const token = first.nextPageToken;
        expect(typeof token).toBe('string');
        const gone = first.entries[1];
        if (!gone) throw new Error('no second entry');
        await storage.delete(gone.module, gone.version);
        const rest = (await storage.index({ limit: 10, pageToken: token })).entries.map(key);
        const whole = (await storage.index({ limit: 10 })).entries.map(key);
        expect(rest).toEqual(whole.slice(whole.indexOf(key(first.entries[0] ?? gone)) + 1));
        expect(whole).not.toContain(key(gone));
      });

      it('forgets a deleted version and dates a version saved again by its new save', async () => {
        const f = fixture('example.com/again', 'v1.0.0');
        await save(f);
        const [before] = (await storage.index({ limit: 10 })).entries;
        await save(fixture('example.com/other', 'v1.0.0'));
        await storage.delete(f.module, f.version);
        expect((await storage.index({ limit: 10 })).entries.map(key)).toEqual(['example.com/other@v1.0.0']);
        await save(f);
        const entries = (await storage.index({ limit: 10 })).entries;
        const again = entries.find((e) => key(e) === key(f));
        const other = entries.find((e) => e.module === 'example.com/other');
        expect(entries).toHaveLength(2);
        // Saved after the other one now, so never dated before it (a coarse clock may tie them).
        expect(again?.storedAt.getTime()).toBeGreaterThanOrEqual(other?.storedAt.getTime() ?? Infinity);
        expect(again?.storedAt.getTime()).toBeGreaterThanOrEqual(before?.storedAt.getTime() ?? Infinity);
      });

      it('rejects limits out of range, invalid dates and tokens it did not make', async () => {
        await save(fixture('example.com/idx', 'v1.0.0'));
        for (const limit of [0, -1, 1.5, 10_001, Number.NaN, Number.POSITIVE_INFINITY]) {
          await expectKind(storage.index({ limit }), 'invalid-argument', `limit ${limit}`);
        }
        await expectKind(
          storage.index({ limit: 10, since: new Date(Number.NaN) }),
          'invalid-argument',
          'since',
        );
        expect((await storage.index({ limit: 10_000 })).entries).toHaveLength(1);
        const forged = [
          'not a token',
          '!!!!',
          Buffer.from('[1,"example.com/idx"]').toString('base64url'),
          Buffer.from('[-1,"example.com/idx","v1.0.0"]').toString('base64url'),
          Buffer.from('["x","example.com/idx","v1.0.0"]').toString('base64url'),
          Buffer.from('[1,"../x","v1.0.0"]').toString('base64url'),
          // A catalog token is not an index token.
          Buffer.from('["example.com/idx","v1.0.0"]').toString('base64url'),
        ];
        for (const pageToken of forged) {
          await expectKind(storage.index({ limit: 10, pageToken }), 'invalid-argument', `token ${pageToken}`);
        }
      });
    });

    describe('invalid arguments', () => {
      const badModules = [
        '',
        '../x',
        'example.com/../x',
        'example.com/a/../../b',
        '/etc/passwd',
        'example.com/%2e%2e/x',
        'example.com/!a',
        'example.com/a\0b',
        'Example.com/a',
        'example.com/.tmp',
        'example.com/a/',
        'example.com//a',
        'example.com\\..\\x',
        'C:\\x',
        'nodot/x',
      ];
      const badVersions = [
        '',
        'v1',
        'v1.2',
        '1.2.3',
        'V1.2.3',
        'v01.2.3',
        'v1.2.3+meta',
        'latest',
        'master',
        '../v1.0.0',
        'v1.0.0/../../x',
        'v1.0.0\0',
        'v1.0.0-!a',
        '..',
      ];

      it('rejects malformed module paths', async () => {
        for (const module of badModules) {
          const at = JSON.stringify(module);
          await expectKind(storage.exists(module, 'v1.0.0'), 'invalid-argument', `exists ${at}`);
          await expectKind(storage.info(module, 'v1.0.0'), 'invalid-argument', `info ${at}`);
          await expectKind(storage.mod(module, 'v1.0.0'), 'invalid-argument', `mod ${at}`);
          await expectKind(storage.zip(module, 'v1.0.0'), 'invalid-argument', `zip ${at}`);
          await expectKind(storage.list(module), 'invalid-argument', `list ${at}`);
          await expectKind(storage.delete(module, 'v1.0.0'), 'invalid-argument', `delete ${at}`);
          await expectKind(
            storage.save(saveInput({ ...fixture('example.com/x', 'v1.0.0'), module })),
            'invalid-argument',
            `save ${at}`,
          );
        }
        expect(await storage.catalog({ pageSize: 100 })).toEqual({ entries: [] });
      });

      it('rejects versions that are not canonical semantic versions', async () => {
        const module = 'example.com/versions';
        for (const version of badVersions) {
          const at = JSON.stringify(version);
          await expectKind(storage.exists(module, version), 'invalid-argument', `exists ${at}`);
          await expectKind(storage.info(module, version), 'invalid-argument', `info ${at}`);
          await expectKind(storage.mod(module, version), 'invalid-argument', `mod ${at}`);
          await expectKind(storage.zip(module, version), 'invalid-argument', `zip ${at}`);
          await expectKind(storage.delete(module, version), 'invalid-argument', `delete ${at}`);
          await expectKind(
            storage.save(saveInput({ ...fixture(module, 'v1.0.0'), version })),
            'invalid-argument',
            `save ${at}`,
          );
        }
        expect(await storage.list(module)).toEqual([]);
        expect(await storage.catalog({ pageSize: 100 })).toEqual({ entries: [] });
      });
    });

    describe('cancellation', () => {
      it('rejects every call whose signal has already been aborted', async () => {
        const f = fixture('example.com/abort', 'v1.0.0');
        await save(f);
        const controller = new AbortController();
        controller.abort();
        const signal = controller.signal;
        const g = fixture('example.com/abort', 'v1.1.0');
        await expectKind(storage.exists(f.module, f.version, { signal }), 'cancelled', 'exists');
        await expectKind(storage.info(f.module, f.version, { signal }), 'cancelled', 'info');
        await expectKind(storage.mod(f.module, f.version, { signal }), 'cancelled', 'mod');
        await expectKind(storage.zip(f.module, f.version, { signal }), 'cancelled', 'zip');
        await expectKind(storage.list(f.module, { signal }), 'cancelled', 'list');
        await expectKind(storage.catalog({ pageSize: 10, signal }), 'cancelled', 'catalog');
        await expectKind(storage.index({ limit: 10, signal }), 'cancelled', 'index');
        await expectKind(storage.save(saveInput(g), { signal }), 'cancelled', 'save');
        await expectKind(storage.delete(f.module, f.version, { signal }), 'cancelled', 'delete');
        await expectMissing(g.module, g.version);
        await expectStored(f);
      });

      it('reports a passed deadline as a timeout', async () => {
        const signal = AbortSignal.abort(new DOMException('deadline passed', 'TimeoutError'));
        await expectKind(storage.exists('example.com/deadline', 'v1.0.0', { signal }), 'timeout', 'exists');
        await expectKind(
          storage.save(saveInput(fixture('example.com/deadline', 'v1.0.0')), { signal }),
          'timeout',
          'save',
        );
        await expectMissing('example.com/deadline', 'v1.0.0');
      });

      it('abandons a save aborted while its zip streams, leaving nothing', async () => {
        const f = fixture('example.com/abort-mid', 'v1.0.0');
        const { stream, waitingForMore } = stalledStream(128 * 1024, 9);
        const controller = new AbortController();
        const saving = storage.save({ ...saveInput(f), zip: stream }, { signal: controller.signal });
        await waitingForMore;
        controller.abort();
        await expectKind(saving, 'cancelled', 'save');
        await expectMissing(f.module, f.version);
        expect(await storage.list(f.module)).toEqual([]);
        await save(f);
        await expectStored(f);
      });
    });
  });
}
