import { hasPathPrefix } from './module-tags';

/** One `<meta name="go-import" content="prefix vcs repo-root [subdir]">`. */
export interface GoImportMeta {
  prefix: string;
  vcs: string;
  repoRoot: string;
  /** The go-import subdirectory field (Go 1.25): the module lives under it in the repository. */
  subdir: string;
}

const META_TAG = /<meta\b([^>]*)>/gi;
const ATTRIBUTE = /([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/g;
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/**
 * The go-import meta tags of an HTML page, as the go command reads them: only in the head
 * (reading stops at `</head>` or `<body>`), attributes in any order and quoting, entities
 * decoded, content of 3 or 4 fields (others are ignored).
 */
export function parseGoImportMeta(html: string): GoImportMeta[] {
  const end = html.search(/<\/head\s*>|<body\b/i);
  const head = end < 0 ? html : html.slice(0, end);
  const found: GoImportMeta[] = [];
  for (const tag of head.matchAll(META_TAG)) {
    const attributes = new Map<string, string>();
    for (const attribute of (tag[1] ?? '').matchAll(ATTRIBUTE)) {
      attributes.set(
        (attribute[1] ?? '').toLowerCase(),
        decodeEntities(attribute[2] ?? attribute[3] ?? attribute[4] ?? ''),
      );
    }
    if (attributes.get('name') !== 'go-import') continue;
    const fields = (attributes.get('content') ?? '').trim().split(/\s+/);
    if (fields.length !== 3 && fields.length !== 4) continue;
    const [prefix = '', vcs = '', repoRoot = '', subdir = ''] = fields;
    found.push({ prefix, vcs, repoRoot, subdir });
  }
  return found;
}

/**
 * The go-import entry for `path`, as the go command chooses it (cmd/go's matchGoImport, with
 * `mod` entries preferred): the one whose prefix is a path prefix of `path`; several that
 * match is an error, unless a `mod` one comes first. Undefined when none matches.
 */
export function matchGoImport(entries: readonly GoImportMeta[], path: string): GoImportMeta | undefined {
  // The go command moves `mod` entries first and, having one, ignores the rest.
  const ordered = [
    ...entries.filter((entry) => entry.vcs === 'mod'),
    ...entries.filter((entry) => entry.vcs !== 'mod'),
  ];
  let match: GoImportMeta | undefined;
  for (const entry of ordered) {
    if (!hasPathPrefix(path, entry.prefix)) continue;
    if (match) {
      if (match.vcs === 'mod' && entry.vcs !== 'mod') break;
      throw new Error(`multiple go-import meta tags match ${path}`);
    }
    match = entry;
  }
  return match;
}

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, entity: string) => {
    if (!entity.startsWith('#')) return ENTITIES[entity.toLowerCase()] ?? whole;
    const hex = entity[1] === 'x' || entity[1] === 'X';
    const code = Number.parseInt(entity.slice(hex ? 2 : 1), hex ? 16 : 10);
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
  });
}
