import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** Every file below `dir` with its size, sorted: what a request that must write nothing must not change. */
export async function snapshotTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (current: string): Promise<void> => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) await walk(path);
      else out.push(`${relative(dir, path)} ${(await stat(path)).size}`);
    }
  };
  await walk(dir);
  return out.sort();
}
