import { errors } from '@modproxy/errors';
import { isValidSemver, versionBuild, versionMajor } from './semver';

/**
 * Module, import and file path rules of golang.org/x/mod/module (CheckPath, CheckImportPath,
 * CheckFilePath, SplitPathVersion, CheckPathMajor). A module path that passes here is one the
 * go command would request; a file path that passes is one it would extract from a zip.
 */

type PathKind = 'module' | 'import' | 'file';

/** Reserved device names on Windows; forbidden as the part of any element before its first dot. */
const WINDOWS_RESERVED = new Set([
  'con',
  'prn',
  'aux',
  'nul',
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9].flatMap((n) => [`com${n}`, `lpt${n}`]),
]);

const FILE_PUNCTUATION = '!#$%&()+,-.=@[]^_{}~ ';
const LONE_SURROGATE = /\p{Cs}/u;
const LETTER = /^\p{L}$/u;

function isAsciiAlnum(c: string): boolean {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

function charAllowed(c: string, kind: PathKind): boolean {
  const ascii = c.length === 1 && c.charCodeAt(0) < 0x80;
  switch (kind) {
    case 'module':
      return ascii && (isAsciiAlnum(c) || '-._~'.includes(c));
    case 'import':
      return ascii && (isAsciiAlnum(c) || '-._~+'.includes(c));
    case 'file':
      // Non-ASCII file names are allowed only if made of letters (golang.org/issue/29101).
      return ascii ? isAsciiAlnum(c) || FILE_PUNCTUATION.includes(c) : LETTER.test(c);
  }
}

/** Returns why `elem` is not an acceptable path element, or undefined if it is. */
function elementProblem(elem: string, kind: PathKind): string | undefined {
  if (elem === '') return 'empty path element';
  if (/^\.+$/.test(elem)) return `invalid path element "${elem}"`;
  if (elem.startsWith('.') && kind === 'module') return 'leading dot in path element';
  if (elem.endsWith('.')) return 'trailing dot in path element';
  for (const c of elem) {
    if (!charAllowed(c, kind)) return `invalid char ${JSON.stringify(c)}`;
  }
  const dot = elem.indexOf('.');
  const short = dot < 0 ? elem : elem.slice(0, dot);
  if (WINDOWS_RESERVED.has(short.toLowerCase())) {
    return `"${short}" disallowed as path element component on Windows`;
  }
  // Windows short names (LONGNA~1) would alias another directory; files inside a module are
  // exempt because the go command never resolves an import through them.
  if (kind !== 'file') {
    const tilde = short.lastIndexOf('~');
    if (tilde >= 0 && tilde < short.length - 1 && /^[0-9]+$/.test(short.slice(tilde + 1))) {
      return 'trailing tilde and digits in path element';
    }
  }
  return undefined;
}

function pathProblem(path: string, kind: PathKind): string | undefined {
  if (LONE_SURROGATE.test(path)) return 'invalid UTF-8';
  if (path === '') return 'empty string';
  if (path.startsWith('-') && kind !== 'file') return 'leading dash';
  if (path.includes('//')) return 'double slash';
  if (path.endsWith('/')) return 'trailing slash';
  for (const elem of path.split('/')) {
    const problem = elementProblem(elem, kind);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * Module paths found valid, kept (bounded) because the check is pure and a request passes the
 * same path through parsing, the module service and storage: each checks, only the first pays.
 */
const validModulePaths = new Set<string>();
const VALID_MODULE_PATHS_KEPT = 4_096;

function modulePathProblem(path: string): string | undefined {
  if (validModulePaths.has(path)) return undefined;
  const problem = checkedModulePathProblem(path);
  if (problem === undefined) {
    if (validModulePaths.size >= VALID_MODULE_PATHS_KEPT) validModulePaths.clear();
    validModulePaths.add(path);
  }
  return problem;
}

function checkedModulePathProblem(path: string): string | undefined {
  const problem = pathProblem(path, 'module');
  if (problem) return problem;
  const slash = path.indexOf('/');
  const first = slash < 0 ? path : path.slice(0, slash);
  if (first === '') return 'leading slash';
  // The first element is a host name: it needs a dot and is matched case-insensitively by DNS,
  // so upper case there would give one module two names.
  if (!first.includes('.')) return 'missing dot in first path element';
  if (path.startsWith('-')) return 'leading dash in first path element';
  for (const c of first) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c === '-' || c === '.')) {
      return `invalid char ${JSON.stringify(c)} in first path element`;
    }
  }
  if (!splitPathVersion(path).ok) return 'invalid version';
  return undefined;
}

/**
 * The problem with a module path, or undefined when it is valid. For callers that want the
 * message without catching.
 */
export function explainModulePath(path: string): string | undefined {
  return modulePathProblem(path);
}

/** Throws invalid-argument unless `path` is a valid module path (x/mod module.CheckPath). */
export function checkModulePath(path: string): void {
  const problem = modulePathProblem(path);
  if (problem) {
    throw errors.invalidArgument('gomod.checkModulePath', `malformed module path "${path}": ${problem}`, {
      module: path,
    });
  }
}

export function isValidModulePath(path: string): boolean {
  return modulePathProblem(path) === undefined;
}

/** Throws invalid-argument unless `path` is a valid import path (x/mod module.CheckImportPath). */
export function checkImportPath(path: string): void {
  const problem = pathProblem(path, 'import');
  if (problem) {
    throw errors.invalidArgument('gomod.checkImportPath', `malformed import path "${path}": ${problem}`);
  }
}

/**
 * Throws invalid-argument unless `path` is acceptable as a file inside a module zip, relative
 * to the `module@version/` prefix (x/mod module.CheckFilePath).
 */
export function checkFilePath(path: string): void {
  const problem = explainFilePath(path);
  if (problem) {
    throw errors.invalidArgument('gomod.checkFilePath', `malformed file path "${path}": ${problem}`);
  }
}

/** The problem with a file path inside a module, or undefined when it is valid. */
export function explainFilePath(path: string): string | undefined {
  return pathProblem(path, 'file');
}

/** Why `v` cannot be a version in a URL or file name (it must be one valid file path element), or undefined. */
export function versionElementProblem(v: string): string | undefined {
  return elementProblem(v, 'file');
}

export interface PathVersionSplit {
  /** The path without its major-version suffix. */
  prefix: string;
  /** `/vN` (N >= 2), `.vN` or `.vN-unstable` for gopkg.in, or ''. */
  pathMajor: string;
  /** False when the path ends in something that looks like, but is not, a valid major suffix. */
  ok: boolean;
}

/**
 * Splits `example.com/m/v2` into `example.com/m` + `/v2` and `gopkg.in/yaml.v3` into
 * `gopkg.in/yaml` + `.v3` (x/mod module.SplitPathVersion). `/v1`, `/v0`, `/v02` and `/v2.1`
 * are not valid suffixes; gopkg.in paths must end in `.vN`.
 */
export function splitPathVersion(path: string): PathVersionSplit {
  if (path.startsWith('gopkg.in/')) return splitGopkgIn(path);
  let i = path.length;
  let dot = false;
  while (i > 0 && /[0-9.]/.test(path.charAt(i - 1))) {
    if (path.charAt(i - 1) === '.') dot = true;
    i--;
  }
  if (i <= 1 || i === path.length || path.charAt(i - 1) !== 'v' || path.charAt(i - 2) !== '/') {
    return { prefix: path, pathMajor: '', ok: true };
  }
  const prefix = path.slice(0, i - 2);
  const pathMajor = path.slice(i - 2);
  if (dot || pathMajor.length <= 2 || pathMajor.charAt(2) === '0' || pathMajor === '/v1') {
    return { prefix: path, pathMajor: '', ok: false };
  }
  return { prefix, pathMajor, ok: true };
}

function splitGopkgIn(path: string): PathVersionSplit {
  let i = path.length;
  if (path.endsWith('-unstable')) i -= '-unstable'.length;
  while (i > 0 && /[0-9]/.test(path.charAt(i - 1))) i--;
  if (i <= 1 || path.charAt(i - 1) !== 'v' || path.charAt(i - 2) !== '.') {
    return { prefix: path, pathMajor: '', ok: false };
  }
  const prefix = path.slice(0, i - 2);
  const pathMajor = path.slice(i - 2);
  // gopkg.in has a v0 but, like everywhere, no leading zeros.
  if (pathMajor.length <= 2 || (pathMajor.charAt(2) === '0' && pathMajor !== '.v0')) {
    return { prefix: path, pathMajor: '', ok: false };
  }
  return { prefix, pathMajor, ok: true };
}

function pathMajorProblem(v: string, pathMajor: string): string | undefined {
  let suffix = pathMajor;
  if (suffix.startsWith('.v') && suffix.endsWith('-unstable')) suffix = suffix.slice(0, -'-unstable'.length);
  // Old go commands made v0.0.0 pseudo-versions for gopkg.in .v1 paths; they live on in go.mod files.
  if (v.startsWith('v0.0.0-') && suffix === '.v1') return undefined;
  const major = versionMajor(v);
  let want: string;
  if (suffix === '') {
    if (major === 'v0' || major === 'v1' || versionBuild(v) === '+incompatible') return undefined;
    want = 'v0 or v1';
  } else {
    if ((suffix.startsWith('/') || suffix.startsWith('.')) && major === suffix.slice(1)) return undefined;
    want = suffix.startsWith('/') || suffix.startsWith('.') ? suffix.slice(1) : suffix;
  }
  return `should be ${want}, not ${major}`;
}

/**
 * Throws invalid-argument unless version `v` belongs to a path whose major suffix is
 * `pathMajor` (x/mod module.CheckPathMajor): '' takes v0, v1 and `+incompatible`; `/vN` and
 * `.vN` take vN only.
 */
export function checkPathMajor(v: string, pathMajor: string): void {
  const problem = pathMajorProblem(v, pathMajor);
  if (problem) {
    throw errors.invalidArgument('gomod.checkPathMajor', `invalid version ${v}: ${problem}`, { version: v });
  }
}

export function matchPathMajor(v: string, pathMajor: string): boolean {
  return pathMajorProblem(v, pathMajor) === undefined;
}

/**
 * Throws invalid-argument unless `module@version` is a pair the go command accepts
 * (x/mod module.Check): valid module path, valid semantic version, major version matching
 * the path's major suffix.
 */
export function checkModuleVersion(module: string, version: string): void {
  const op = 'gomod.checkModuleVersion';
  const pathIssue = modulePathProblem(module);
  if (pathIssue)
    throw errors.invalidArgument(op, `malformed module path "${module}": ${pathIssue}`, { module, version });
  if (!isValidSemver(version)) {
    throw errors.invalidArgument(op, `${module}@${version}: invalid version: not a semantic version`, {
      module,
      version,
    });
  }
  const majorIssue = pathMajorProblem(version, splitPathVersion(module).pathMajor);
  if (majorIssue) {
    throw errors.invalidArgument(op, `${module}@${version}: invalid version: ${majorIssue}`, {
      module,
      version,
    });
  }
}
