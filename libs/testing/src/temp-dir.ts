import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Creates a fresh directory under `parent` (default `os.tmpdir()`) whose name starts with `prefix`. */
export async function createTempDir(prefix = 'modproxy-test-', parent: string = tmpdir()): Promise<string> {
  return mkdtemp(join(parent, prefix));
}

/** Removes a directory tree; a missing directory is not an error. */
export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Runs `body` with a fresh temp dir that is removed afterwards, whatever `body` does. */
export async function withTempDir<T>(
  body: (dir: string) => Promise<T>,
  prefix = 'modproxy-test-',
): Promise<T> {
  const dir = await createTempDir(prefix);
  try {
    return await body(dir);
  } finally {
    await removeDir(dir);
  }
}
