import yazl from 'yazl';

export interface ZipEntrySpec {
  /** Full name inside the zip, `module@version/` prefix included; a trailing `/` makes a directory entry. */
  name: string;
  data?: string | Buffer;
  /** Deflate the entry (default) or store it as is. */
  compress?: boolean;
}

/** Builds a zip in memory with yazl, entries in the given order. */
export async function buildZip(entries: readonly ZipEntrySpec[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const mtime = new Date('2024-01-02T03:04:05Z');
  for (const entry of entries) {
    if (entry.name.endsWith('/')) {
      zip.addEmptyDirectory(entry.name, { mtime });
    } else {
      const data = typeof entry.data === 'string' ? Buffer.from(entry.data) : (entry.data ?? Buffer.alloc(0));
      zip.addBuffer(data, entry.name, { mtime, compress: entry.compress ?? true });
    }
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * Replaces every occurrence of `from` with `to` (same length) in a built zip: names in the
 * local and central headers, or stored file bytes. Lets a test make zips no writer would.
 */
export function patchZip(zip: Buffer, from: string | Buffer, to: string | Buffer): Buffer {
  const a = Buffer.from(from);
  const b = Buffer.from(to);
  if (a.length !== b.length) throw new Error('patchZip needs equal lengths');
  const out = Buffer.from(zip);
  let found = 0;
  for (let at = out.indexOf(a); at >= 0; at = out.indexOf(a, at + b.length)) {
    b.copy(out, at);
    found++;
  }
  if (found === 0) throw new Error(`patchZip: ${a.toString()} not found`);
  return out;
}
