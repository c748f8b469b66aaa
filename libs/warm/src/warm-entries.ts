import { checkModulePath, isCanonicalVersion } from '@modproxy/gomod';

/** One module version to warm. */
export interface WarmEntry {
  module: string;
  version: string;
}

/** A line that names no module version the proxy could serve. */
export interface WarmLineError {
  line: number;
  text: string;
  reason: string;
}

export type WarmFileFormat = 'go.sum' | 'go.mod' | 'list';

export interface ParsedWarmFile {
  format: WarmFileFormat;
  /** Each module@version once, in the order the file first names it. */
  entries: WarmEntry[];
  errors: WarmLineError[];
}

/**
 * The module versions a file names: a go.sum (`<module> <version>[/go.mod] <hash>`), a go.mod
 * (its `require` directives, single or in a block; `replace`, `exclude` and the rest are not
 * fetched) or a list of `module@version` lines (`#` and `//` start comments). The format comes
 * from the file name (`go.sum`, `go.mod`), else from the content.
 */
export function parseWarmFile(text: string, fileName = ''): ParsedWarmFile {
  const format = formatOf(text, fileName);
  const found: Array<{ line: number; text: string; module: string; version: string }> = [];
  const errors: WarmLineError[] = [];
  const lines = text.split(/\r?\n/);
  let inRequireBlock = false;
  lines.forEach((raw, index) => {
    const line = index + 1;
    const text = stripComment(raw, format).trim();
    if (text === '') return;
    const add = (module: string | undefined, version: string | undefined) =>
      found.push({ line, text: raw.trim(), module: unquote(module ?? ''), version: version ?? '' });
    switch (format) {
      case 'go.sum': {
        const fields = text.split(/\s+/);
        if (fields.length !== 3) {
          errors.push({ line, text: raw.trim(), reason: 'expected "<module> <version>[/go.mod] <hash>"' });
          return;
        }
        add(fields[0], fields[1]?.replace(/\/go\.mod$/, ''));
        return;
      }
      case 'go.mod': {
        if (inRequireBlock) {
          if (text === ')') {
            inRequireBlock = false;
            return;
          }
          const [module, version, ...rest] = text.split(/\s+/);
          if (rest.length > 0 || version === undefined) {
            errors.push({
              line,
              text: raw.trim(),
              reason: 'expected "<module> <version>" in the require block',
            });
            return;
          }
          add(module, version);
          return;
        }
        const [verb, ...args] = text.split(/\s+/);
        if (verb !== 'require') return;
        if (args.length === 1 && args[0] === '(') {
          inRequireBlock = true;
          return;
        }
        if (args.length !== 2) {
          errors.push({ line, text: raw.trim(), reason: 'expected "require <module> <version>"' });
          return;
        }
        add(args[0], args[1]);
        return;
      }
      case 'list': {
        const at = text.lastIndexOf('@');
        if (at <= 0 || /\s/.test(text)) {
          errors.push({ line, text: raw.trim(), reason: 'expected "<module>@<version>"' });
          return;
        }
        add(text.slice(0, at), text.slice(at + 1));
        return;
      }
    }
  });
  const entries: WarmEntry[] = [];
  const seen = new Set<string>();
  for (const candidate of found) {
    const problem = problemOf(candidate.module, candidate.version);
    if (problem) {
      errors.push({ line: candidate.line, text: candidate.text, reason: problem });
      continue;
    }
    const key = `${candidate.module}@${candidate.version}`;
    if (seen.has(key)) continue;
    seen.add(key);
    entries.push({ module: candidate.module, version: candidate.version });
  }
  errors.sort((a, b) => a.line - b.line);
  return { format, entries, errors };
}

function formatOf(text: string, fileName: string): WarmFileFormat {
  const base = fileName.split(/[\\/]/).pop() ?? '';
  if (base === 'go.sum' || base.endsWith('.sum')) return 'go.sum';
  if (base === 'go.mod' || base.endsWith('.mod')) return 'go.mod';
  const first = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .find((line) => line !== '' && !line.startsWith('//') && !line.startsWith('#'));
  if (first === undefined) return 'list';
  if (/^(module|go|require|toolchain)\b/.test(first)) return 'go.mod';
  if (/^\S+\s+\S+\s+h\d+:/.test(first)) return 'go.sum';
  return 'list';
}

function stripComment(line: string, format: WarmFileFormat): string {
  if (format === 'go.sum') return line;
  const slashes = line.indexOf('//');
  let text = slashes === -1 ? line : line.slice(0, slashes);
  if (format === 'list' && text.trimStart().startsWith('#')) text = '';
  return text;
}

/** go.mod may quote a path (`"example.com/m"`). */
function unquote(value: string): string {
  return /^".*"$/.test(value) ? value.slice(1, -1) : value;
}

function problemOf(module: string, version: string): string | undefined {
  try {
    checkModulePath(module);
  } catch (error) {
    return `invalid module path: ${(error as Error).message}`;
  }
  if (!isCanonicalVersion(version))
    return `invalid version ${JSON.stringify(version)}: not a canonical semantic version`;
  return undefined;
}
