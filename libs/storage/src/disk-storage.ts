import { createHash } from 'node:crypto';
import {
  createWriteStream,
  fstat,
  open as openFd,
  readFile as readFileCallback,
  close as closeFd,
} from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { addAbortSignal } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errors, throwIfAborted, type ModuleErrorOptions } from '@modproxy/errors';
import {
  escapePath,
  escapeVersion,
  isCanonicalVersion,
  sortVersions,
  unescapePath,
  unescapeVersion,
} from '@modproxy/gomod';
import { DiskWorkArea, type DiskWorkAreaOptions, errnoCode } from './disk-work-area';
import { DiskZipStream } from './disk-zip-stream';
import { compareCatalogEntries, pageOfSorted, parseCatalogOptions } from './catalog-paging';
import { compareIndexEntries, pageOfSortedIndex, parseIndexOptions } from './index-paging';
import type {
  CallOptions,
  CatalogOptions,
  CatalogPage,
  IndexEntry,
  IndexOptions,
  IndexPage,
  ModuleStorage,
  ModuleVersionRef,
  SaveInput,
  ZipContent,
} from './module-storage';
import {
  checkModule,
  checkModuleVersion,
  chunkToBuffer,
  normalizeZipSha256,
  toStorageError,
} from './storage-call';

export interface DiskStorageOptions extends DiskWorkAreaOptions {
  /**
   * Directory holding the modules; created when missing. Work files live in its `.tmp` and
   * leases in its `.leases` (see {@link DiskWorkArea}); it may be shared by processes on many hosts.
   */
  root: string;
}

const VERSIONS_DIR = '@v';
const PARTS = ['info', 'mod', 'zip'] as const;
const COMMIT_ATTEMPTS = 4;
/**
 * Reads of a zip: large, so a 36 MiB download is a few dozen reads and event-loop turns, not
 * hundreds; the response's backpressure keeps at most about this much per download in memory.
 */
export const ZIP_READ_BYTES = 256 * 1024;
/** Version directories whose path was checked and built, kept so a warm read does neither again. */
const KNOWN_DIRS = 4_096;
/** The longest file name common file systems (ext4, XFS, NFS, APFS) allow. */
const MAX_NAME_BYTES = 255;

/**
 * Module storage in a directory tree, the embedded default:
 * `<root>/<escaped module>/@v/<escaped version>/{info,mod,zip}`.
 *
 * A version is written whole into a fresh directory under `<root>/.tmp` and then renamed into
 * place in one step, so readers (and a restart after a crash) see all of it or nothing, and
 * of several concurrent saves exactly one lands. A version directory missing any of its three
 * files is treated as absent.
 */
export class DiskStorage implements ModuleStorage {
  /** Commits in flight per version directory, so repairing a broken leftover never races a save. */
  private readonly commits = new Map<string, Promise<void>>();
  /** `module@version` → its checked directory (a pure function of the two, so kept, bounded). */
  private readonly knownDirs = new Map<string, string>();
  /**
   * Version directories seen with all three files: saves rename a whole directory into place
   * and deletes move it away whole, so a later read need only open its one file (a file removed
   * by hand from a directory seen complete is noticed when that file is read, or at restart).
   */
  private readonly completeDirs = new Set<string>();

  private constructor(
    private readonly root: string,
    private readonly work: DiskWorkArea,
  ) {}

  /** Opens (creating when needed) the tree at `options.root` and removes work files left by dead processes. */
  static async open(options: DiskStorageOptions): Promise<DiskStorage> {
    const op = 'storage.disk.open';
    if (typeof options.root !== 'string' || options.root === '') {
      throw errors.invalidArgument(op, 'root directory is required');
    }
    const root = resolve(options.root);
    try {
      return new DiskStorage(root, await DiskWorkArea.open(root, options));
    } catch (error) {
      throw toStorageError(error, op, undefined);
    }
  }

  async exists(module: string, version: string, options: CallOptions = {}): Promise<boolean> {
    const op = 'storage.disk.exists';
    const dir = this.versionDir(op, module, version);
    try {
      throwIfAborted(op, options.signal, { module, version });
      return await isComplete(dir);
    } catch (error) {
      throw toStorageError(error, op, options.signal, { module, version });
    }
  }

  async info(module: string, version: string, options: CallOptions = {}): Promise<Buffer> {
    return this.readPart('storage.disk.info', module, version, 'info', options);
  }

  async mod(module: string, version: string, options: CallOptions = {}): Promise<Buffer> {
    return this.readPart('storage.disk.mod', module, version, 'mod', options);
  }

  async zip(module: string, version: string, options: CallOptions = {}): Promise<ZipContent> {
    const op = 'storage.disk.zip';
    const refs = { module, version };
    const dir = this.versionDir(op, module, version);
    try {
      throwIfAborted(op, options.signal, refs);
      // Reading through the open handle keeps the bytes reachable even if the version is deleted meanwhile.
      const [opened, complete] = await Promise.allSettled([
        openForReading(join(dir, 'zip')),
        this.requireComplete(op, refs, dir, ['info', 'mod']),
      ]);
      if (opened.status === 'rejected') throw opened.reason;
      const { fd, size, isFile } = opened.value;
      try {
        if (complete.status === 'rejected') throw complete.reason;
        if (!isFile) throw notStored(op, refs);
        throwIfAborted(op, options.signal, refs);
        // Plain callbacks per read, large reads, chunks reused once the consumer gives them back.
        const stream = new DiskZipStream(fd, size, ZIP_READ_BYTES);
        if (options.signal) addAbortSignal(options.signal, stream);
        return { size, stream };
      } catch (error) {
        closeFd(fd, () => undefined);
        throw error;
      }
    } catch (error) {
      throw toStorageError(notFoundOnMissing(error, op, refs), op, options.signal, refs);
    }
  }

  async save(input: SaveInput, options: CallOptions = {}): Promise<void> {
    const op = 'storage.disk.save';
    const { module, version } = input;
    const { signal } = options;
    const refs = { module, version };
    let work: string | undefined;
    try {
      const finalDir = this.versionDir(op, module, version);
      const expectedSha256 = normalizeZipSha256(op, input.zipSha256, refs);
      throwIfAborted(op, signal, refs);
      if (await isComplete(finalDir)) throw alreadyStored(op, refs);

      work = await this.work.makeDir('save');
      await writeSynced(join(work, 'info'), input.info);
      await writeSynced(join(work, 'mod'), input.mod);
      const hash = createHash('sha256');
      let size = 0;
      await pipeline(
        input.zip,
        async function* (source: AsyncIterable<unknown>) {
          for await (const chunk of source) {
            const bytes = chunkToBuffer(op, chunk);
            hash.update(bytes);
            size += bytes.length;
            yield bytes;
          }
        },
        createWriteStream(join(work, 'zip'), { flags: 'wx', flush: true }),
        signal ? { signal } : {},
      );
      const actualSha256 = hash.digest('hex');
      if (expectedSha256 !== undefined && actualSha256 !== expectedSha256) {
        throw errors.invalidArgument(
          op,
          `zip SHA-256 ${actualSha256} (${size} bytes) does not match the expected ${expectedSha256}`,
          refs,
        );
      }
      await syncDir(work);
      throwIfAborted(op, signal, refs);
      // The version directory's mtime is its stored time (see index()); a rename keeps it.
      const now = new Date();
      await utimes(work, now, now);
      await this.commit(op, work, finalDir, refs);
      work = undefined;
    } catch (error) {
      if (!input.zip.destroyed) input.zip.destroy();
      throw toStorageError(error, op, signal, refs);
    } finally {
      if (work !== undefined) await rm(work, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  async list(module: string, options: CallOptions = {}): Promise<string[]> {
    const op = 'storage.disk.list';
    const dir = this.moduleDir(op, module);
    try {
      throwIfAborted(op, options.signal, { module });
      return sortVersions(await storedVersions(join(dir, VERSIONS_DIR)));
    } catch (error) {
      throw toStorageError(error, op, options.signal, { module });
    }
  }

  async delete(module: string, version: string, options: CallOptions = {}): Promise<void> {
    const op = 'storage.disk.delete';
    const refs = { module, version };
    const dir = this.versionDir(op, module, version);
    try {
      throwIfAborted(op, options.signal, refs);
      this.completeDirs.delete(dir);
      // Moved out of sight in one step first, so no reader ever sees a half-removed version.
      const trash = await this.work.reservePath('delete');
      try {
        await rename(dir, trash);
      } catch (error) {
        throw notFoundOnMissing(error, op, refs);
      }
      const wasComplete = await isComplete(trash);
      await syncDir(dirname(dir)).catch(() => undefined);
      await rm(trash, { recursive: true, force: true });
      if (!wasComplete) throw notStored(op, refs);
    } catch (error) {
      throw toStorageError(error, op, options.signal, refs);
    }
  }

  async catalog(options: CatalogOptions): Promise<CatalogPage> {
    const op = 'storage.disk.catalog';
    const request = parseCatalogOptions(op, options);
    try {
      throwIfAborted(op, options.signal);
      const all: ModuleVersionRef[] = [];
      await this.walk(
        this.root,
        [],
        async (module, versionsDir) => {
          for (const version of await storedVersions(versionsDir)) all.push({ module, version });
        },
        options.signal,
      );
      all.sort(compareCatalogEntries);
      return pageOfSorted(all, request);
    } catch (error) {
      throw toStorageError(error, op, options.signal);
    }
  }

  /**
   * A walk of the whole tree, like the catalog: the stored time of a version is its
   * directory's mtime, set just before the commit's rename (versions saved before that rule
   * carry the time their zip was begun). Fine for the embedded default; a large mirror runs
   * the storage service on MongoDB, which keeps an index on the stored time.
   */
  async index(options: IndexOptions): Promise<IndexPage> {
    const op = 'storage.disk.index';
    const request = parseIndexOptions(op, options);
    try {
      throwIfAborted(op, options.signal);
      const all: IndexEntry[] = [];
      await this.walk(
        this.root,
        [],
        async (module, versionsDir) => {
          for (const version of await storedVersions(versionsDir)) {
            const storedAt = await storedTime(join(versionsDir, escapeVersion(version)));
            if (storedAt) all.push({ module, version, storedAt });
          }
        },
        options.signal,
      );
      all.sort(compareIndexEntries);
      return pageOfSortedIndex(all, request);
    } catch (error) {
      throw toStorageError(error, op, options.signal);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.commits.values());
    await this.work.close();
  }

  /** Finds every module directory (one holding `@v`) below `dir` and visits its `@v` directory. */
  private async walk(
    dir: string,
    elements: string[],
    visit: (module: string, versionsDir: string) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<void> {
    throwIfAborted('storage.disk.catalog', signal);
    const entries = await readDirOrEmpty(dir);
    for (const entry of entries) {
      // Module path elements never start with a dot, which keeps `.tmp` (and strays) out.
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      if (entry.name === VERSIONS_DIR) {
        const module = moduleOfDir(elements);
        if (module === undefined) continue;
        await visit(module, join(dir, entry.name));
        continue;
      }
      await this.walk(join(dir, entry.name), [...elements, entry.name], visit, signal);
    }
  }

  private async readPart(
    op: string,
    module: string,
    version: string,
    part: 'info' | 'mod',
    options: CallOptions,
  ): Promise<Buffer> {
    const refs = { module, version };
    const dir = this.versionDir(op, module, version);
    try {
      throwIfAborted(op, options.signal, refs);
      // The exact files, no listing: this part, and that the other two are there (a version
      // directory missing one is absent).
      const [bytes] = await Promise.all([
        readSmallFile(join(dir, part), options.signal),
        this.requireComplete(op, refs, dir, part === 'info' ? ['mod', 'zip'] : ['info', 'zip']),
      ]);
      return bytes;
    } catch (error) {
      throw toStorageError(notFoundOnMissing(error, op, refs), op, options.signal, refs);
    }
  }

  /** Throws not-found unless `names` are files in `dir`, unless `dir` was seen complete before. */
  private async requireComplete(
    op: string,
    refs: ModuleErrorOptions,
    dir: string,
    names: readonly string[],
  ): Promise<void> {
    if (this.completeDirs.has(dir)) return;
    await requireFiles(op, refs, dir, names);
    if (this.completeDirs.size >= KNOWN_DIRS) this.completeDirs.clear();
    this.completeDirs.add(dir);
  }

  /**
   * Renames the finished work directory to its final place. A directory that is already there
   * and complete means another save won; an incomplete one (which this adapter never makes,
   * but a hand-edited or damaged tree may hold) is moved aside and the rename retried.
   */
  private async commit(op: string, work: string, finalDir: string, refs: ModuleErrorOptions): Promise<void> {
    const previous = this.commits.get(finalDir) ?? Promise.resolve();
    const attempt = previous.catch(() => undefined).then(() => this.commitNow(op, work, finalDir, refs));
    const settled = attempt.catch(() => undefined);
    this.commits.set(finalDir, settled);
    try {
      await attempt;
    } finally {
      if (this.commits.get(finalDir) === settled) this.commits.delete(finalDir);
    }
  }

  private async commitNow(
    op: string,
    work: string,
    finalDir: string,
    refs: ModuleErrorOptions,
  ): Promise<void> {
    const parent = dirname(finalDir);
    for (let attempt = 1; ; attempt++) {
      await mkdir(parent, { recursive: true });
      try {
        await rename(work, finalDir);
        await syncDir(parent).catch(() => undefined);
        return;
      } catch (error) {
        const code = errnoCode(error);
        const last = attempt >= COMMIT_ATTEMPTS;
        if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') {
          if (last || (await isComplete(finalDir))) throw alreadyStored(op, refs);
          await this.discard(finalDir);
          continue;
        }
        // The parent may have been removed by hand between mkdir and rename.
        if (code === 'ENOENT' && !last) continue;
        throw error;
      }
    }
  }

  private async discard(path: string): Promise<void> {
    const trash = await this.work.reservePath('discard');
    try {
      await rename(path, trash);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return;
      throw error;
    }
    await rm(trash, { recursive: true, force: true });
  }

  private moduleDir(op: string, module: string): string {
    checkModule(op, module);
    return this.underRoot(op, join(this.root, ...escapePath(module).split('/')), { module });
  }

  private versionDir(op: string, module: string, version: string): string {
    const key = `${module}@${version}`;
    const known = this.knownDirs.get(key);
    if (known !== undefined) return known;
    checkModuleVersion(op, module, version);
    const dir = join(this.root, ...escapePath(module).split('/'), VERSIONS_DIR, escapeVersion(version));
    const checked = this.underRoot(op, dir, { module, version });
    if (this.knownDirs.size >= KNOWN_DIRS) this.knownDirs.clear();
    this.knownDirs.set(key, checked);
    return checked;
  }

  /** Defence in depth behind the Go path rules: nothing resolves outside the root or into `.tmp`. */
  private underRoot(op: string, path: string, refs: ModuleErrorOptions): string {
    const rel = relative(this.root, path);
    const elements = rel.split(sep);
    const first = elements[0] ?? '';
    if (rel === '' || isAbsolute(rel) || first === '..' || first.startsWith('.')) {
      throw errors.invalidArgument(op, 'path resolves outside the storage root', refs);
    }
    // The Go rules set no length; file systems do, and a module that no file system can hold
    // is a client's mistake, not a storage failure.
    if (elements.some((element) => Buffer.byteLength(element) > MAX_NAME_BYTES)) {
      throw errors.invalidArgument(op, `a path element is longer than ${MAX_NAME_BYTES} bytes`, refs);
    }
    return path;
  }
}

/** A version directory counts only when all three files are there. */
async function isComplete(dir: string): Promise<boolean> {
  const entries = await readDirOrEmpty(dir);
  const files = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
  return PARTS.every((part) => files.has(part));
}

/**
 * fs.readFile with callbacks: for a small file it is several times faster than fs/promises'
 * readFile (one read context instead of a FileHandle and a promise per step).
 */
function readSmallFile(path: string, signal: AbortSignal | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    readFileCallback(path, signal ? { signal } : {}, (error, bytes) =>
      error ? reject(error) : resolve(bytes),
    );
  });
}

/** Opens a file for reading and reads its size and kind, with callbacks (see readSmallFile). */
function openForReading(path: string): Promise<{ fd: number; size: number; isFile: boolean }> {
  return new Promise((resolve, reject) => {
    openFd(path, 'r', (error, fd) => {
      if (error) return reject(error);
      fstat(fd, (statError, stats) => {
        if (statError) return closeFd(fd, () => reject(statError));
        resolve({ fd, size: stats.size, isFile: stats.isFile() });
      });
    });
  });
}

/** Throws not-found unless every one of `names` is a file in `dir`. */
async function requireFiles(
  op: string,
  refs: ModuleErrorOptions,
  dir: string,
  names: readonly string[],
): Promise<void> {
  const found = await Promise.all(
    names.map((name) =>
      stat(join(dir, name)).then(
        (stats) => stats.isFile(),
        () => false,
      ),
    ),
  );
  if (found.includes(false)) throw notStored(op, refs);
}

async function readDirOrEmpty(dir: string) {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw error;
  }
}

/** Versions with a complete directory under an `@v` directory, in no particular order. */
async function storedVersions(versionsDir: string): Promise<string[]> {
  const entries = (await readDirOrEmpty(versionsDir)).filter((e) => e.isDirectory());
  const found = await Promise.all(
    entries.map(async (entry) => {
      const version = versionOfDir(entry.name);
      if (version === undefined) return undefined;
      return (await isComplete(join(versionsDir, entry.name))) ? version : undefined;
    }),
  );
  return found.filter((v): v is string => v !== undefined);
}

/** A version directory's mtime; undefined when it went away (deleted meanwhile). */
async function storedTime(dir: string): Promise<Date | undefined> {
  try {
    return new Date(Math.floor((await stat(dir)).mtimeMs));
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/** The version a directory name stands for, if it is exactly how this adapter would name it. */
function versionOfDir(name: string): string | undefined {
  try {
    const version = unescapeVersion(name);
    return isCanonicalVersion(version) && escapeVersion(version) === name ? version : undefined;
  } catch {
    return undefined;
  }
}

function moduleOfDir(elements: string[]): string | undefined {
  const escaped = elements.join('/');
  try {
    const module = unescapePath(escaped);
    return escapePath(module) === escaped ? module : undefined;
  } catch {
    return undefined;
  }
}

async function writeSynced(path: string, data: Buffer): Promise<void> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes a directory's entries durable, so a rename survives a power cut. */
async function syncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function notStored(op: string, refs: ModuleErrorOptions) {
  return errors.notFound(op, `${refs.module}@${refs.version} is not stored`, refs);
}

function alreadyStored(op: string, refs: ModuleErrorOptions) {
  return errors.alreadyExists(op, `${refs.module}@${refs.version} is already stored`, refs);
}

/** A file vanishing between checks means a concurrent delete: the version is simply gone. */
function notFoundOnMissing(error: unknown, op: string, refs: ModuleErrorOptions): unknown {
  const code = errnoCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR' ? notStored(op, refs) : error;
}
