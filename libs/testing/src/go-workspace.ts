import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runGo } from './go-env';
import type { CommandResult } from './run-command';
import { createTempDir, removeDir } from './temp-dir';

export interface GoWorkspaceImport {
  importPath: string;
  /** A function of the package that takes nothing and returns a string. */
  func: string;
}

export interface GoWorkspaceOptions {
  /** The environment every command in the workspace runs with, e.g. `fixtures.env`. */
  env: Record<string, string>;
  /** Packages `main.go` imports and calls, in order, printing one result per line. */
  imports?: GoWorkspaceImport[];
  /** `require` lines for go.mod (module path → version); usually left to `go get`. */
  requires?: Record<string, string>;
  /** Module path of the workspace. Default `example.test/workspace`. */
  modulePath?: string;
  /** Parent of the temp dir. Default `os.tmpdir()`. */
  parentDir?: string;
}

export interface GoWorkspace {
  dir: string;
  env: Record<string, string>;
  /** Runs the go command in the workspace (the workspace env, `extraEnv` on top). */
  go(
    args: readonly string[],
    options?: { signal?: AbortSignal; extraEnv?: Record<string, string> },
  ): Promise<CommandResult>;
  /** Removes the workspace. Idempotent. */
  remove(): Promise<void>;
}

/**
 * A temp main module whose `main.go` imports the given packages and prints to stdout what
 * their functions return, one line each, to run `go get`, `go build`, `go run`, `go mod download -json` in tests.
 */
export async function createGoWorkspace(options: GoWorkspaceOptions): Promise<GoWorkspace> {
  const dir = await createTempDir('modproxy-workspace-', options.parentDir);
  const imports = options.imports ?? [];
  const requires = Object.entries(options.requires ?? {});
  const goMod = [`module ${options.modulePath ?? 'example.test/workspace'}`, '', 'go 1.21', ''];
  if (requires.length > 0)
    goMod.push('require (', ...requires.map(([path, version]) => `\t${path} ${version}`), ')', '');
  const mainGo = [
    'package main',
    '',
    ...(imports.length > 0
      ? [
          'import (',
          '\t"os"',
          ...imports.map((imported, index) => `\tp${index} ${JSON.stringify(imported.importPath)}`),
          ')',
          '',
        ]
      : []),
    'func main() {',
    ...imports.map((imported, index) => `\tos.Stdout.WriteString(p${index}.${imported.func}() + "\\n")`),
    '}',
    '',
  ];
  await writeFile(join(dir, 'go.mod'), goMod.join('\n'));
  await writeFile(join(dir, 'main.go'), mainGo.join('\n'));
  let removed = false;
  return {
    dir,
    env: options.env,
    go: (args, callOptions = {}) =>
      runGo(args, { cwd: dir, env: { ...options.env, ...callOptions.extraEnv }, signal: callOptions.signal }),
    async remove() {
      if (removed) return;
      removed = true;
      await removeDir(dir);
    },
  };
}
