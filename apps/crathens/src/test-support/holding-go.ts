import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTempDir, removeDir, runCommandOrThrow } from '@modproxy/testing';

/**
 * A GO_BINARY for a crathens process: the real go command, except that the first
 * `go mod download` waits until released, so a test knows a fetch is under way and can kill or
 * stop the process at that moment. Every go command it runs is recorded.
 */
export class HoldingGo {
  private constructor(
    readonly dir: string,
    readonly binary: string,
  ) {}

  static async create(): Promise<HoldingGo> {
    const dir = await createTempDir('crathens-holding-go-');
    const realGo = (
      await runCommandOrThrow('sh', ['-c', 'command -v go'], { env: { PATH: process.env['PATH'] ?? '' } })
    ).stdout.trim();
    const binary = join(dir, 'go');
    // `mkdir` is atomic: only the first download takes the hold. The wait is the fake binary's
    // own; the test waits for the `held/pid` file, an event.
    await writeFile(
      binary,
      [
        '#!/bin/sh',
        `dir='${dir}'`,
        'echo "$*" >> "$dir/calls"',
        'case " $* " in',
        '  *" download "*)',
        '    if mkdir "$dir/held" 2>/dev/null; then',
        '      echo $$ > "$dir/held/pid.tmp" && mv "$dir/held/pid.tmp" "$dir/held/pid"',
        '      while [ ! -e "$dir/release" ]; do sleep 0.05; done',
        '    fi',
        '    ;;',
        'esac',
        `exec '${realGo}' "$@"`,
        '',
      ].join('\n'),
    );
    await chmod(binary, 0o755);
    return new HoldingGo(dir, binary);
  }

  /** The pid of the held go command once a download is held (it leads its own process group). */
  async heldPid(): Promise<number | undefined> {
    const text = await readFile(join(this.dir, 'held', 'pid'), 'utf8').catch(() => '');
    return text.trim() === '' ? undefined : Number(text.trim());
  }

  /** The `go mod download` commands run so far. */
  async downloads(): Promise<number> {
    const calls = await readFile(join(this.dir, 'calls'), 'utf8').catch(() => '');
    return calls.split('\n').filter((line) => / download /.test(` ${line} `)).length;
  }

  async release(): Promise<void> {
    await writeFile(join(this.dir, 'release'), '');
  }

  /** Kills the held go command (an orphan once its crathens was killed) by its process group. */
  async killHeld(): Promise<void> {
    const pid = await this.heldPid();
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  async remove(): Promise<void> {
    await this.release();
    await this.killHeld();
    await removeDir(this.dir);
  }
}
