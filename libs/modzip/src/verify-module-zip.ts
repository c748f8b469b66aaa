import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';
import { errors, isModuleError, ModuleError, toModuleError } from '@modproxy/errors';
import { checkModuleVersion, explainFilePath, isCanonicalVersion } from '@modproxy/gomod';
import { CollisionChecker } from './collision-checker';
import { hash1, type HashedFile } from './dirhash';
import { MAX_GO_MOD, MAX_LICENSE, MAX_ZIP_FILE } from './limits';

const OP = 'modzip.verify';
const EMPTY_SHA256 = createHash('sha256').digest('hex');
const STORE = 0;
const DEFLATE = 8;
const DATA_DESCRIPTOR_FLAG = 0x8;

export interface VerifyModuleZipOptions {
  /** Stops the verification; the promise then rejects with a cancelled (or timeout) ModuleError. */
  signal?: AbortSignal;
  /**
   * Limit in bytes on both the zip file and the total uncompressed size of its files.
   * Default: 500 MiB, the go command's own limit; a larger value does not lift that one.
   */
  maxSize?: number;
}

export interface VerifiedModuleZip {
  /** The go.sum hash of the zip (`h1:…`), as `go mod download` reports it in `Sum`. */
  h1: string;
  /** Number of files (directory entries not counted). */
  files: number;
  /** Total uncompressed size of the files in bytes. */
  size: number;
  /** The module's root go.mod from the zip, if it has one. */
  goMod?: Buffer;
}

/**
 * Checks a module zip the way the go command does before extracting it
 * (golang.org/x/mod/zip CheckZip, plus the size and CRC checks of reading every file) and
 * computes its go.sum hash, streaming each entry so memory stays small whatever the zip.
 * Throws invalid-argument, naming module and version, for any zip the go command would
 * refuse: such a zip must never be stored.
 *
 * Like the go command, directory entries are allowed (they must be empty and are hashed as
 * empty files) and file modes, symlink bits included, are ignored: every file is its bytes.
 */
export async function verifyModuleZip(
  zipPath: string,
  module: string,
  version: string,
  options: VerifyModuleZipOptions = {},
): Promise<VerifiedModuleZip> {
  const fail = (message: string, cause?: unknown): ModuleError =>
    errors.invalidArgument(OP, `${module}@${version}: ${message}`, { module, version, cause });
  const { signal } = options;
  const maxSize = Math.min(options.maxSize ?? MAX_ZIP_FILE, MAX_ZIP_FILE);

  if (!isCanonicalVersion(version)) throw fail('version is not canonical');
  try {
    checkModuleVersion(module, version);
  } catch (error) {
    throw fail(error instanceof Error ? error.message : String(error), error);
  }

  checkAborted(signal, module, version);
  const zipSize = await fileSize(zipPath, module, version);
  if (zipSize > maxSize)
    throw fail(`module zip file is too large (${zipSize} bytes; limit is ${maxSize} bytes)`);

  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(zipPath, {
      lazyEntries: true,
      autoClose: false,
      // Go takes names as raw bytes, never as CP437, and does its own name checks.
      decodeStrings: false,
      validateEntrySizes: true,
    });
  } catch (error) {
    throw fail(`not a valid zip file: ${messageOf(error)}`, error);
  }

  const prefix = `${module}@${version}/`;
  const collisions = new CollisionChecker();
  const hashed: HashedFile[] = [];
  let files = 0;
  let size = 0;
  let goMod: Buffer | undefined;
  try {
    for await (const entry of zip.eachEntry()) {
      checkAborted(signal, module, version);
      const entryName = decodeName(entry.fileNameRaw);
      if (entryName === undefined) throw fail('zip entry name is not valid UTF-8');
      const problem = (message: string): ModuleError => fail(`${entryName}: ${message}`);

      if (!entryName.startsWith(prefix)) throw problem(`path does not have prefix "${prefix}"`);
      let name = entryName.slice(prefix.length);
      const isDir = name === '' || name.endsWith('/');
      if (isDir) {
        // The go command reads a directory entry as an empty file, and fails if it declares content.
        if (entry.uncompressedSize !== 0) throw problem('directory entry has content');
        hashed.push({ name: entryName, sha256: EMPTY_SHA256 });
        if (name === '') continue;
        name = name.slice(0, -1);
      }
      if (!isCleanPath(name)) throw problem('file path is not clean');
      const badPath = explainFilePath(name);
      if (badPath) throw problem(`malformed file path "${name}": ${badPath}`);
      const collision = collisions.check(name, isDir);
      if (collision) throw problem(collision);
      if (isDir) continue;

      if (posix.basename(name).toLowerCase() === 'go.mod') {
        if (name.includes('/')) throw problem('go.mod file not in module root directory');
        if (name !== 'go.mod') throw problem('go.mod files must have lowercase names');
      }
      const declared = entry.uncompressedSize;
      if (size + declared > maxSize) {
        throw fail(`total uncompressed size of module contents too large (max size is ${maxSize} bytes)`);
      }
      if (name === 'go.mod' && declared > MAX_GO_MOD)
        throw problem(`go.mod file too large (max size is ${MAX_GO_MOD} bytes)`);
      if (name === 'LICENSE' && declared > MAX_LICENSE)
        throw problem(`LICENSE file too large (max size is ${MAX_LICENSE} bytes)`);

      const content = await readEntry(zip, entry, name === 'go.mod', signal, problem, module, version);
      hashed.push({ name: entryName, sha256: content.sha256 });
      if (content.data) goMod = content.data;
      files++;
      size += declared;
    }
  } catch (error) {
    if (isModuleError(error)) throw error;
    throw fail(`malformed zip file: ${messageOf(error)}`, error);
  } finally {
    zip.close();
  }

  return { h1: hash1(hashed), files, size, ...(goMod ? { goMod } : {}) };
}

interface EntryContent {
  sha256: string;
  /** The bytes, when asked to keep them. */
  data?: Buffer;
}

async function readEntry(
  zip: yauzl.ZipFile,
  entry: yauzl.Entry,
  keep: boolean,
  signal: AbortSignal | undefined,
  problem: (message: string) => ModuleError,
  module: string,
  version: string,
): Promise<EntryContent> {
  if (entry.isEncrypted()) throw problem('encrypted zip entries are not supported');
  if (entry.compressionMethod !== STORE && entry.compressionMethod !== DEFLATE) {
    throw problem(`unsupported compression method ${entry.compressionMethod}`);
  }
  const stream = await zip.openReadStreamPromise(entry);
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let crc = 0;
  let read = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      checkAborted(signal, module, version);
      read += chunk.length;
      if (read > entry.uncompressedSize)
        throw problem(`uncompressed size is larger than declared size (${entry.uncompressedSize} bytes)`);
      hash.update(chunk);
      crc = crc32(chunk, crc);
      if (keep) chunks.push(chunk);
    }
  } finally {
    stream.destroy();
  }
  if (read !== entry.uncompressedSize)
    throw problem(`uncompressed size ${read} differs from declared size ${entry.uncompressedSize}`);
  // Go trusts a zero CRC as "unknown" unless a data descriptor vouches for it.
  const crcKnown = entry.crc32 !== 0 || (entry.generalPurposeBitFlag & DATA_DESCRIPTOR_FLAG) !== 0;
  if (crcKnown && crc >>> 0 !== entry.crc32 >>> 0) throw problem('checksum error (CRC-32 mismatch)');
  return { sha256: hash.digest('hex'), ...(keep ? { data: Buffer.concat(chunks) } : {}) };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function decodeName(raw: Buffer): string | undefined {
  try {
    return UTF8.decode(raw);
  } catch {
    return undefined;
  }
}

/**
 * Whether Go's path.Clean would leave relative `name` unchanged: no empty or `.` elements and
 * no `..` after a real element (leading `..` is clean, and left to the file path check).
 */
function isCleanPath(name: string): boolean {
  let real = false;
  for (const elem of name.split('/')) {
    if (elem === '' || elem === '.') return false;
    if (elem === '..') {
      if (real) return false;
    } else {
      real = true;
    }
  }
  return true;
}

function checkAborted(signal: AbortSignal | undefined, module: string, version: string): void {
  if (!signal?.aborted) return;
  const reason: unknown = signal.reason;
  const options = { module, version, cause: reason };
  if (reason instanceof Error && reason.name === 'TimeoutError')
    throw errors.timeout(OP, 'zip verification timed out', options);
  throw errors.cancelled(OP, 'zip verification cancelled', options);
}

async function fileSize(zipPath: string, module: string, version: string): Promise<number> {
  try {
    return (await stat(zipPath)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw errors.notFound(OP, `zip file not found: ${zipPath}`, { module, version, cause: error });
    }
    throw toModuleError(error, OP, { module, version });
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
