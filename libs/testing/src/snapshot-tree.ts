import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';

export interface SnapshotTreeOptions {
  /** Also list directories (as `path/`), so that an empty directory made by mistake shows. Default false. */
  directories?: boolean;
}

/** Every file below `dir` with its size, sorted: what a request that must write nothing must not change. */
export async function snapshotTree(dir: string, options: SnapshotTreeOptions = {}): Promise<string[]> {
  const out: string[] = [];
  const walk = async (current: string): Promise<void> => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) {
        if (options.directories) out.push(`${relative(dir, path)}/`);
        await walk(path);
      } else out.push(`${relative(dir, path)} ${(await stat(path)).size}`);
    }
  };
  await walk(dir);
  return out.sort();
}
