import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface GitRecorder {
  /** A script to use as GIT_BINARY: it logs its arguments, then execs the real git. */
  binary: string;
  /** Every command run through it so far, as argument lists (`['ls-remote', '--tags', …]`). */
  commands(): Promise<string[][]>;
}

/**
 * A GIT_BINARY wrapper that records what a program asks git to do, for tests that must show
 * it listed tags and never cloned. The log path is written into the script, since the program
 * may run git with an allow-listed environment.
 */
export async function createGitRecorder(dir: string, realGit = 'git'): Promise<GitRecorder> {
  const binary = join(dir, 'recording-git');
  const log = join(dir, 'recording-git.log');
  await writeFile(log, '');
  const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
  await writeFile(
    binary,
    [
      '#!/bin/sh',
      // One line per command, arguments separated by tabs (none of ours contains one).
      `(for arg in "$@"; do printf '%s\\t' "$arg"; done; printf '\\n') >> ${quote(log)}`,
      `exec ${quote(realGit)} "$@"`,
      '',
    ].join('\n'),
  );
  await chmod(binary, 0o755);
  return {
    binary,
    commands: async () =>
      (await readFile(log, 'utf8'))
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => line.replace(/\t$/, '').split('\t')),
  };
}
