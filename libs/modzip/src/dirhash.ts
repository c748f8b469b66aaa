import { createHash } from 'node:crypto';
import { errors } from '@modproxy/errors';

/** One file of a tree to hash: its slash-separated name and the hex SHA-256 of its content. */
export interface HashedFile {
  name: string;
  sha256: string;
}

/**
 * The `h1:` hash of golang.org/x/mod/sumdb/dirhash (Hash1), the one go.sum records: a
 * summary of `"<sha256 hex>  <name>\n"` lines in name order, itself hashed with SHA-256 and
 * base64-encoded. Names are ordered by their UTF-8 bytes, as Go sorts strings.
 */
export function hash1(files: readonly HashedFile[]): string {
  const sorted = files
    .map((file) => ({ ...file, key: Buffer.from(file.name, 'utf8') }))
    .sort((a, b) => Buffer.compare(a.key, b.key));
  const summary = createHash('sha256');
  for (const file of sorted) {
    // A newline in a name would let one tree's summary impersonate another's.
    if (file.name.includes('\n')) {
      throw errors.invalidArgument(
        'modzip.hash1',
        `file name with a newline is not supported: ${JSON.stringify(file.name)}`,
      );
    }
    if (!/^[0-9a-f]{64}$/.test(file.sha256)) {
      throw errors.invalidArgument(
        'modzip.hash1',
        `not a lower-case hex SHA-256: ${JSON.stringify(file.sha256)}`,
      );
    }
    summary.update(`${file.sha256}  ${file.name}\n`, 'utf8');
  }
  return `h1:${summary.digest('base64')}`;
}

/** The go.sum hash of a `.mod` file: {@link hash1} over the single file `go.mod`. */
export function hashGoMod(mod: Buffer): string {
  return hash1([{ name: 'go.mod', sha256: createHash('sha256').update(mod).digest('hex') }]);
}
