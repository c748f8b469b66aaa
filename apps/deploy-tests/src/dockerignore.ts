import { readFileSync } from 'node:fs';

/**
 * .dockerignore as the builder reads it: one pattern a line (Go's filepath.Match, plus `**` for
 * any number of directories), matched against paths relative to the context; a match of a
 * directory excludes what is under it; `!` re-includes.
 */
export class DockerIgnore {
  private readonly rules: Array<{ pattern: RegExp; include: boolean }>;

  constructor(text: string) {
    this.rules = text
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => {
        const include = line.startsWith('!');
        const pattern = (include ? line.slice(1) : line).replace(/^\/+/, '').replace(/\/+$/, '');
        return { pattern: globToRegExp(pattern), include };
      });
  }

  static read(path: string): DockerIgnore {
    return new DockerIgnore(readFileSync(path, 'utf8'));
  }

  /** Whether the context path (e.g. `scripts/healthcheck.mjs`) is left out of the build context. */
  excludes(path: string): boolean {
    const parts = path.replace(/^\.\//, '').split('/');
    const candidates = parts.map((_, index) => parts.slice(0, index + 1).join('/'));
    let excluded = false;
    for (const rule of this.rules) {
      if (candidates.some((candidate) => rule.pattern.test(candidate))) excluded = !rule.include;
    }
    return excluded;
  }
}

function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let index = 0; index < pattern.length; index += 1) {
    const char = pattern[index] ?? '';
    if (char === '*' && pattern[index + 1] === '*') {
      // `**/` matches no directory or any number of them.
      source += pattern[index + 2] === '/' ? '(?:.*/)?' : '.*';
      index += pattern[index + 2] === '/' ? 2 : 1;
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}
