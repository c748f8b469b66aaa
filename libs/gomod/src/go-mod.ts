/**
 * Reads the module path out of a go.mod file: the `module` directive as the go command's
 * go.mod parser (golang.org/x/mod/modfile) reads it, with `//` comments, "quoted" paths and
 * the block form `module (\n\tpath\n)`, without parsing the rest of the file. undefined when
 * there is no module directive, more than one, or it is malformed.
 */
export function parseGoModModulePath(goMod: string | Buffer): string | undefined {
  const text = typeof goMod === 'string' ? goMod : goMod.toString('utf8');
  const lines = tokenizeLines(text);
  if (lines === undefined) return undefined;
  let found: string | undefined;
  let count = 0;
  let block: string | undefined;
  for (const line of lines) {
    if (block !== undefined) {
      if (line.length === 1 && line[0] === ')') {
        block = undefined;
        continue;
      }
      if (block === 'module') {
        count++;
        found = line.length === 1 ? tokenValue(line[0] ?? '') : undefined;
      }
      continue;
    }
    const [verb, ...args] = line;
    if (args.length === 1 && args[0] === '(') {
      block = verb;
      continue;
    }
    if (verb !== 'module') continue;
    count++;
    found = args.length === 1 ? tokenValue(args[0] ?? '') : undefined;
  }
  // An unterminated block or a repeated directive makes the whole file unreadable to the go command.
  if (block !== undefined || count !== 1 || found === '') return undefined;
  return found;
}

const PUNCTUATION = '()[]{},';

/** Splits go.mod text into lines of raw tokens, comments dropped; undefined on a lexical error. */
function tokenizeLines(text: string): string[][] | undefined {
  const lines: string[][] = [];
  let line: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text.charAt(i);
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '\n') {
      if (line.length > 0) lines.push(line);
      line = [];
      i++;
    } else if (text.startsWith('//', i)) {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end;
    } else if (PUNCTUATION.includes(c)) {
      line.push(c);
      i++;
    } else if (c === '"' || c === '`') {
      let j = i + 1;
      for (;;) {
        const d = text.charAt(j);
        if (j >= text.length || d === '\n') return undefined;
        j++;
        if (d === c) break;
        if (d === '\\' && c === '"') j++;
      }
      line.push(text.slice(i, j));
      i = j;
    } else {
      let j = i;
      while (j < text.length && isIdentChar(text.charAt(j)) && !text.startsWith('//', j)) j++;
      if (j === i) return undefined;
      line.push(text.slice(i, j));
      i = j;
    }
  }
  if (line.length > 0) lines.push(line);
  return lines;
}

function isIdentChar(c: string): boolean {
  return !PUNCTUATION.includes(c) && /^[^\s\p{C}]$/u.test(c);
}

/** The string a path token stands for: Go-unquoted if "quoted"; undefined if it cannot be a path. */
function tokenValue(token: string): string | undefined {
  if (token.startsWith('"')) return unquoteGo(token.slice(1, -1));
  // Other quotes are reserved by the go.mod syntax, and punctuation is its own token.
  if (/["'`]/.test(token) || PUNCTUATION.includes(token)) return undefined;
  return token;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  '"': '"',
};

/** Go's strconv.Unquote for the body of a "…" string; undefined if malformed. */
function unquoteGo(body: string): string | undefined {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body.charAt(i);
    if (c === '"') return undefined;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = body.charAt(++i);
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) {
      out += simple;
      continue;
    }
    const hexLength = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
    if (hexLength > 0) {
      const hex = body.slice(i + 1, i + 1 + hexLength);
      if (!new RegExp(`^[0-9A-Fa-f]{${hexLength}}$`).test(hex)) return undefined;
      const code = parseInt(hex, 16);
      if (code > 0x10ffff) return undefined;
      out += String.fromCodePoint(code);
      i += hexLength;
      continue;
    }
    const octal = body.slice(i, i + 3);
    if (/^[0-3][0-7]{2}$/.test(octal)) {
      out += String.fromCharCode(parseInt(octal, 8));
      i += 2;
      continue;
    }
    return undefined;
  }
  return out;
}
