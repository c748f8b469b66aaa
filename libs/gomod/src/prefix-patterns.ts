/**
 * Go's GOPRIVATE-style module patterns: `path.Match` globs and golang.org/x/mod/module's
 * MatchPrefixPatterns, which matches each glob against as many leading elements of a module
 * path as the glob has. Ported line by line so that a pattern means here exactly what it
 * means to the go command (`go help module-private`).
 */

/** Why `matchGlob` could not answer: the pattern is malformed (Go's `path.ErrBadPattern`). */
const BAD_PATTERN = Symbol('bad pattern');
type ChunkResult = { rest: string; ok: boolean } | typeof BAD_PATTERN;

/**
 * Go's `path.Match`: `*` matches any run of non-`/` characters, `?` one non-`/` character,
 * `[...]` a character class (`^` negates, `a-z` ranges), `\` escapes. The whole name must match.
 * Returns `undefined` for a malformed pattern, as Go returns `ErrBadPattern`.
 */
export function matchGlob(pattern: string, name: string): boolean | undefined {
  let rest = pattern;
  let text = name;
  pattern: while (rest.length > 0) {
    const scanned = scanChunk(rest);
    const { star, chunk } = scanned;
    rest = scanned.rest;
    // A trailing * matches the rest of the name unless it has a /.
    if (star && chunk === '') return !text.includes('/');
    const here = matchChunk(chunk, text);
    if (here === BAD_PATTERN) return undefined;
    // The last chunk must use up the name, or a later star could still have matched.
    if (here.ok && (here.rest.length === 0 || rest.length > 0)) {
      text = here.rest;
      continue;
    }
    if (star) {
      // Let the star swallow one more character at a time, never a /.
      for (let i = 0; i < text.length && text[i] !== '/'; i++) {
        const skipped = matchChunk(chunk, text.slice(i + 1));
        if (skipped === BAD_PATTERN) return undefined;
        if (skipped.ok) {
          if (rest.length === 0 && skipped.rest.length > 0) continue;
          text = skipped.rest;
          continue pattern;
        }
      }
    }
    // No match; still report a malformed remainder, as Go does.
    while (rest.length > 0) {
      const next = scanChunk(rest);
      rest = next.rest;
      if (matchChunk(next.chunk, '') === BAD_PATTERN) return undefined;
    }
    return false;
  }
  return text.length === 0;
}

/** Whether Go's `path.Match` accepts the pattern at all. */
export function isValidGlob(pattern: string): boolean {
  return matchGlob(pattern, '') !== undefined;
}

/**
 * golang.org/x/mod/module.MatchPrefixPatterns: whether a leading part of `target` (as many
 * path elements as the glob has) matches one of the comma-separated globs. Empty and
 * malformed globs are ignored, and so is a glob's trailing `/`. So `example.com` matches
 * `example.com/a/b`, `*.corp.example` matches `git.corp.example/x`, and `example.com/a`
 * does not match `example.com/ab`.
 */
export function matchPrefixPatterns(globs: string, target: string): boolean {
  for (const entry of globs.split(',')) {
    const glob = entry.endsWith('/') ? entry.slice(0, -1) : entry;
    if (glob === '') continue;
    // A glob with N slashes is matched against the first N+1 elements of the target.
    let slashes = [...glob].filter((c) => c === '/').length;
    let prefix = target;
    for (let i = 0; i < target.length; i++) {
      if (target[i] !== '/') continue;
      if (slashes === 0) {
        prefix = target.slice(0, i);
        break;
      }
      slashes--;
    }
    if (slashes > 0) continue;
    if (matchGlob(glob, prefix) === true) return true;
  }
  return false;
}

/**
 * Why a comma-separated glob list would not mean what its author meant, or `undefined` when
 * it is fine: a malformed glob (Go would silently ignore it) or white space (Go does not trim
 * it, so ` example.com` would match nothing).
 */
export function checkPrefixPatterns(globs: string): string | undefined {
  for (const glob of globs.split(',')) {
    if (/\s/.test(glob)) return `pattern ${JSON.stringify(glob)} contains white space`;
    if (!isValidGlob(glob)) return `pattern ${JSON.stringify(glob)} is not a valid glob`;
  }
  return undefined;
}

function scanChunk(pattern: string): { star: boolean; chunk: string; rest: string } {
  let star = false;
  let p = pattern;
  while (p.startsWith('*')) {
    p = p.slice(1);
    star = true;
  }
  let inRange = false;
  for (let i = 0; i < p.length; i++) {
    switch (p[i]) {
      case '\\':
        // A trailing backslash is reported by matchChunk.
        if (i + 1 < p.length) i++;
        break;
      case '[':
        inRange = true;
        break;
      case ']':
        inRange = false;
        break;
      case '*':
        if (!inRange) return { star, chunk: p.slice(0, i), rest: p.slice(i) };
    }
  }
  return { star, chunk: p, rest: '' };
}

/**
 * Whether `chunk` (literals, classes and `?`, no star) matches the start of `s`, and what
 * remains of `s`. After a mismatch the chunk is still read to the end, to find a malformed one.
 */
function matchChunk(chunk: string, s: string): ChunkResult {
  let c = chunk;
  let text = s;
  let failed = false;
  while (c.length > 0) {
    if (!failed && text.length === 0) failed = true;
    switch (c[0]) {
      case '[': {
        let char = -1;
        if (!failed) {
          char = text.codePointAt(0) ?? -1;
          text = text.slice(String.fromCodePoint(char).length);
        }
        c = c.slice(1);
        const negated = c.startsWith('^');
        if (negated) c = c.slice(1);
        let matched = false;
        let ranges = 0;
        for (;;) {
          if (c.startsWith(']') && ranges > 0) {
            c = c.slice(1);
            break;
          }
          const lo = classChar(c);
          if (lo === BAD_PATTERN) return BAD_PATTERN;
          c = lo.rest;
          let hi = lo;
          if (c.startsWith('-')) {
            const upper = classChar(c.slice(1));
            if (upper === BAD_PATTERN) return BAD_PATTERN;
            hi = upper;
            c = upper.rest;
          }
          if (lo.char <= char && char <= hi.char) matched = true;
          ranges++;
        }
        if (matched === negated) failed = true;
        break;
      }
      case '?':
        if (!failed) {
          if (text[0] === '/') failed = true;
          text = text.slice(String.fromCodePoint(text.codePointAt(0) ?? 0).length);
        }
        c = c.slice(1);
        break;
      case '\\':
        c = c.slice(1);
        if (c.length === 0) return BAD_PATTERN;
        c = literal(c);
        break;
      default:
        c = literal(c);
    }
  }
  return failed ? { rest: '', ok: false } : { rest: text, ok: true };

  function literal(from: string): string {
    if (!failed) {
      if (from[0] !== text[0]) failed = true;
      text = text.slice(1);
    }
    return from.slice(1);
  }
}

/** One possibly escaped character of a class (Go's `getEsc`). */
function classChar(chunk: string): { char: number; rest: string } | typeof BAD_PATTERN {
  if (chunk.length === 0 || chunk[0] === '-' || chunk[0] === ']') return BAD_PATTERN;
  let c = chunk;
  if (c[0] === '\\') {
    c = c.slice(1);
    if (c.length === 0) return BAD_PATTERN;
  }
  const char = c.codePointAt(0) ?? 0;
  const rest = c.slice(String.fromCodePoint(char).length);
  // A class must be closed: Go reports a pattern ending inside one as malformed.
  if (rest.length === 0) return BAD_PATTERN;
  return { char, rest };
}
