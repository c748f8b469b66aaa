import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FixtureModule, FixtureModules } from './fixture-modules';
import { runGo } from './go-env';

export interface ExportFixturesOptions {
  /** The fixture modules to export. Default all of them. */
  modules?: FixtureModule[];
  signal?: AbortSignal;
}

interface DownloadResult {
  Path?: string;
  Version?: string;
  Error?: string;
  Info?: string;
  GoMod?: string;
  Zip?: string;
}

/**
 * Fills `dir` with the GOPROXY layout of the fixtures (every tagged and pseudo-version's
 * .info/.mod/.zip, `@v/list`, `@latest`), taking the files the go command writes in direct
 * mode, so that a `StaticGoproxy` over `dir` serves the same modules as the git repos.
 * Resolves with the written paths, relative to `dir`.
 */
export async function exportFixturesAsGoproxy(
  fixtures: FixtureModules,
  dir: string,
  options: ExportFixturesOptions = {},
): Promise<string[]> {
  const modules = options.modules ?? fixtures.all;
  const queries = modules.flatMap((module) =>
    Object.keys(module.byVersion).map((version) => `${module.path}@${version}`),
  );
  const result = await runGo(['mod', 'download', '-json', ...queries], {
    cwd: fixtures.root,
    env: fixtures.env,
    signal: options.signal,
  });
  const downloads = parseJsonStream(result.stdout) as DownloadResult[];
  const failed = downloads.filter((download) => download.Error !== undefined);
  if (result.exitCode !== 0 || failed.length > 0 || downloads.length !== queries.length) {
    const reasons = failed.map(
      (download) => `${download.Path ?? '?'}@${download.Version ?? '?'}: ${download.Error ?? ''}`,
    );
    throw new Error(
      `go mod download of the fixtures failed (exit ${String(result.exitCode)}): ${reasons.join('; ') || result.stderr.trim()}`,
    );
  }

  const written: string[] = [];
  const byQuery = new Map(
    downloads.map((download) => [`${download.Path ?? ''}@${download.Version ?? ''}`, download]),
  );
  for (const module of modules) {
    const versionDir = join(module.escapedPath, '@v');
    await mkdir(join(dir, versionDir), { recursive: true });
    for (const version of Object.keys(module.byVersion)) {
      const download = byQuery.get(`${module.path}@${version}`);
      if (!download?.Info || !download.GoMod || !download.Zip)
        throw new Error(`go mod download gave no files for ${module.path}@${version}`);
      for (const [source, suffix] of [
        [download.Info, '.info'],
        [download.GoMod, '.mod'],
        [download.Zip, '.zip'],
      ] as const) {
        const target = join(versionDir, `${version}${suffix}`);
        await copyFile(source, join(dir, target));
        written.push(target);
      }
    }
    const list = join(versionDir, 'list');
    await writeFile(join(dir, list), module.versions.map((version) => `${version}\n`).join(''));
    written.push(list);
    const latest = join(module.escapedPath, '@latest');
    await copyFile(join(dir, versionDir, `${module.latest}.info`), join(dir, latest));
    written.push(latest);
  }
  return written;
}

/** Splits the go command's `-json` output, a sequence of JSON objects, into values. */
export function parseJsonStream(text: string): unknown[] {
  const values: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  let escaped = false;
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    if (inString) {
      if (escaped) escaped = false;
      else if (char === '\\') escaped = true;
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') inString = true;
    else if (char === '{') {
      if (depth === 0) start = index;
      depth++;
    } else if (char === '}') {
      depth--;
      if (depth === 0 && start >= 0) {
        values.push(JSON.parse(text.slice(start, index + 1)));
        start = -1;
      }
    }
  }
  return values;
}
