import { chmod, mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  fetchTempDirs,
  leftoverFetchDirAgeMs,
  removeLeftoverTempDirs,
  startTempDirSweeps,
} from './leftover-temp-dirs';

const HOUR = 3_600_000;

describe('removeLeftoverTempDirs', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'modproxy-leftovers-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function makeDir(name: string, ageMs: number): Promise<void> {
    await mkdir(join(dir, name, 'gopath', 'pkg'), { recursive: true });
    await writeFile(join(dir, name, 'gopath', 'pkg', 'zip'), 'partial');
    const when = new Date(Date.now() - ageMs);
    await utimes(join(dir, name), when, when);
  }

  it('removes only directories with one of the prefixes that are older than the threshold', async () => {
    await makeDir('modproxy-direct-old', 2 * HOUR);
    await makeDir('goproxy-fetch-old', 2 * HOUR);
    // A live process's fetch: younger than any fetch deadline.
    await makeDir('goproxy-fetch-live', 1_000);
    await makeDir('someone-else-old', 2 * HOUR);
    await writeFile(join(dir, 'goproxy-fetch-file'), 'not a directory');
    const removed = await removeLeftoverTempDirs({
      dir,
      prefixes: ['modproxy-direct-', 'goproxy-fetch-'],
      olderThanMs: HOUR,
    });
    expect(removed.sort()).toEqual(['goproxy-fetch-old', 'modproxy-direct-old']);
    expect((await readdir(dir)).sort()).toEqual([
      'goproxy-fetch-file',
      'goproxy-fetch-live',
      'someone-else-old',
    ]);
  });

  it('removes a leftover go module cache whose directories are read-only', async () => {
    await makeDir('modproxy-direct-readonly', 2 * HOUR);
    const pkg = join(dir, 'modproxy-direct-readonly', 'gopath', 'pkg');
    await chmod(pkg, 0o555);
    const when = new Date(Date.now() - 2 * HOUR);
    await utimes(join(dir, 'modproxy-direct-readonly'), when, when);
    expect(await removeLeftoverTempDirs({ dir, prefixes: ['modproxy-direct-'], olderThanMs: HOUR })).toEqual([
      'modproxy-direct-readonly',
    ]);
    expect(await readdir(dir)).toEqual([]);
  });

  it('is not troubled by a missing directory', async () => {
    expect(
      await removeLeftoverTempDirs({ dir: join(dir, 'missing'), prefixes: ['x-'], olderThanMs: HOUR }),
    ).toEqual([]);
  });

  it('sweeps at once and again on every interval, and tells what it removed', async () => {
    await makeDir('goproxy-fetch-first', 2 * HOUR);
    const seen: string[][] = [];
    const sweeps = startTempDirSweeps([{ dir, prefixes: ['goproxy-fetch-'], olderThanMs: HOUR }], {
      intervalMs: 20,
      onRemoved: (_dir, names) => seen.push(names),
    });
    try {
      await expect.poll(() => seen).toEqual([['goproxy-fetch-first']]);
      await makeDir('goproxy-fetch-second', 2 * HOUR);
      await expect.poll(() => seen).toEqual([['goproxy-fetch-first'], ['goproxy-fetch-second']]);
    } finally {
      await sweeps.stop();
    }
  });

  it('waits at least an hour, and twice the longest fetch deadline, before a directory counts as left over', () => {
    expect(leftoverFetchDirAgeMs(30_000)).toBe(HOUR);
    expect(leftoverFetchDirAgeMs(2 * HOUR)).toBe(4 * HOUR);
    expect(fetchTempDirs(undefined, 300_000)).toEqual([
      { dir: tmpdir(), prefixes: ['modproxy-direct-', 'goproxy-fetch-'], olderThanMs: HOUR },
    ]);
    // With GO_WORK_DIR, every fetch's temp files are there, upstream proxies' zips too.
    expect(fetchTempDirs('/var/go-work', 300_000)).toEqual([
      { dir: '/var/go-work', prefixes: ['modproxy-direct-', 'goproxy-fetch-'], olderThanMs: HOUR },
    ]);
  });
});
