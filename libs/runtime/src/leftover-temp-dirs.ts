import { chmod, mkdtemp, readdir, rm, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface LeftoverTempDirsOptions {
  /** The directory that holds the temp directories (a GO_WORK_DIR, the OS temp dir). */
  dir: string;
  /** Names of the temp directories to look at, e.g. `modproxy-direct-`, `goproxy-fetch-`. */
  prefixes: readonly string[];
  /**
   * Only directories unchanged for longer than this are removed. It must exceed the longest a
   * live process keeps one: every fetch removes its directory when it ends, and every fetch
   * ends by its deadline, so a directory older than the longest fetch deadline has no owner.
   */
  olderThanMs: number;
}

/**
 * Removes temp directories that crashed or killed processes left behind, and never one of a
 * live process sharing `dir`: those are younger than the fetch deadline by construction. The
 * names carry no owner, so age is the only safe test; it is measured with the clock of the file
 * system holding `dir` (the modification time of a probe made there), so a shared volume's
 * clients need not agree on the time. A directory's modification time is never earlier than its
 * creation, so its age is never overestimated. Resolves with the names removed; a directory that
 * cannot be removed is skipped, and a missing `dir` is not an error.
 */
export async function removeLeftoverTempDirs(options: LeftoverTempDirsOptions): Promise<string[]> {
  const { dir, prefixes, olderThanMs } = options;
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => prefixes.some((prefix) => name.startsWith(prefix)));
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return [];
    throw error;
  }
  if (names.length === 0) return [];
  const now = await fileSystemNow(dir);
  const removed: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isDirectory() || now - info.mtimeMs <= olderThanMs) continue;
    if (await removeTree(path)) removed.push(name);
  }
  return removed;
}

/** The file system's "now": the modification time of a directory made in `dir` a moment ago. */
async function fileSystemNow(dir: string): Promise<number> {
  const probe = await mkdtemp(join(dir, '.modproxy-clock-'));
  try {
    return (await stat(probe)).mtimeMs;
  } finally {
    await rmdir(probe).catch(() => undefined);
  }
}

/** Removes a tree, making read-only directories (a go module cache's) writable when that is what stops it. */
async function removeTree(path: string): Promise<boolean> {
  try {
    await rm(path, { recursive: true, force: true, maxRetries: 2 });
    return true;
  } catch {
    await makeWritable(path).catch(() => undefined);
    return rm(path, { recursive: true, force: true }).then(
      () => true,
      () => false,
    );
  }
}

async function makeWritable(dir: string): Promise<void> {
  await chmod(dir, 0o700);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await makeWritable(join(dir, entry.name));
  }
}

/**
 * How old a fetch temp directory must be before it counts as left over: twice the longest
 * deadline a fetch of this process runs under, and never under an hour, because processes with
 * other deadlines (a proxy and lathens on one host) may share the directory.
 */
export function leftoverFetchDirAgeMs(longestFetchDeadlineMs: number): number {
  return Math.max(2 * longestFetchDeadlineMs, 3_600_000);
}

/**
 * The temp directories libs/upstream makes for fetches, the go command's GOPATHs and upstream
 * proxies' zips: both in GO_WORK_DIR when it is set (createUpstreamFromConfig puts them there),
 * else in the OS temp dir.
 */
export function fetchTempDirs(
  goWorkDir: string | undefined,
  longestFetchDeadlineMs: number,
): LeftoverTempDirsOptions[] {
  const olderThanMs = leftoverFetchDirAgeMs(longestFetchDeadlineMs);
  const dir = goWorkDir === undefined || goWorkDir === '' ? tmpdir() : resolve(goWorkDir);
  return [{ dir, prefixes: ['modproxy-direct-', 'goproxy-fetch-'], olderThanMs }];
}

export interface TempDirSweeps {
  /** Stops sweeping and waits for a sweep in progress. */
  stop(): Promise<void>;
}

export interface TempDirSweepsOptions {
  /** Time between sweeps; the first runs at once. */
  intervalMs: number;
  onRemoved?(dir: string, names: string[]): void;
  onError?(dir: string, error: unknown): void;
}

/**
 * Sweeps now and then every `intervalMs`, so the leftovers of a process that crashed just before
 * this one started (younger than the threshold at start-up) go too. Start-up does not wait.
 */
export function startTempDirSweeps(
  sweeps: readonly LeftoverTempDirsOptions[],
  options: TempDirSweepsOptions,
): TempDirSweeps {
  let running: Promise<void> | undefined;
  const sweep = () => {
    running ??= (async () => {
      for (const target of sweeps) {
        try {
          const names = await removeLeftoverTempDirs(target);
          if (names.length > 0) options.onRemoved?.(target.dir, names);
        } catch (error) {
          options.onError?.(target.dir, error);
        }
      }
    })().finally(() => {
      running = undefined;
    });
  };
  sweep();
  const timer = setInterval(sweep, options.intervalMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
