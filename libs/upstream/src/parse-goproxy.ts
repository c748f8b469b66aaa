import { errors, type ModuleError } from '@modproxy/errors';
import { redactedBase, redactText } from './redact-url';

/**
 * One entry of a GOPROXY list. `fallThroughOnError` is the separator written after it: `|`
 * (true) moves on to the next entry after any error, `,` (false, also for the last entry)
 * only after not-found or gone.
 */
export type GoproxyListEntry =
  | { kind: 'proxy'; url: string; fallThroughOnError: boolean }
  | { kind: 'direct'; fallThroughOnError: false }
  | { kind: 'off'; fallThroughOnError: false };

const OP = 'upstream.parse-goproxy';

/**
 * Parses a GOPROXY value with the go command's rules:
 * - entries are separated by `,` or `|`; blank entries are skipped;
 * - `direct` and `off` end the list: whatever follows them is ignored (not even checked), as
 *   the go command does for forward compatibility;
 * - an entry without `:/` that contains `.`, `:` or `/` and is not an absolute path gets an
 *   implicit `https://` (`proxy.example.com` → `https://proxy.example.com`);
 * - every other entry must be an `http://` or `https://` URL (`file://` proxies are not
 *   supported by this server).
 *
 * Throws `invalid-argument` naming the value (passwords redacted) for a bad entry and for a
 * value with no entries at all: choosing a default for an unset GOPROXY is configuration's job.
 */
export function parseGoproxyList(value: string): GoproxyListEntry[] {
  const entries: GoproxyListEntry[] = [];
  let rest = value;
  while (rest !== '') {
    const cut = rest.search(/[,|]/);
    const raw = cut < 0 ? rest : rest.slice(0, cut);
    const fallThroughOnError = cut >= 0 && rest[cut] === '|';
    rest = cut < 0 ? '' : rest.slice(cut + 1);

    const entry = raw.trim();
    if (entry === '') continue;
    if (entry === 'off' || entry === 'direct') {
      entries.push({ kind: entry, fallThroughOnError: false });
      break;
    }
    entries.push({ kind: 'proxy', url: checkProxyUrl(value, withImplicitScheme(entry)), fallThroughOnError });
  }
  if (entries.length === 0) {
    throw invalid(value, value.trim() === '' ? 'the list is empty' : 'the list contains no entries');
  }
  return entries;
}

/** The list written back in GOPROXY syntax with passwords redacted, for names and logs. */
export function formatGoproxyList(entries: readonly GoproxyListEntry[]): string {
  return entries
    .map((entry, i) => {
      const label = entry.kind === 'proxy' ? redactedBase(new URL(entry.url)) : entry.kind;
      const separator = i === entries.length - 1 ? '' : entry.fallThroughOnError ? '|' : ',';
      return label + separator;
    })
    .join('');
}

function withImplicitScheme(entry: string): string {
  const looksLikeHost = /[.:/]/.test(entry) && !entry.includes(':/') && !entry.startsWith('/');
  return looksLikeHost ? `https://${entry}` : entry;
}

function checkProxyUrl(value: string, entry: string): string {
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    const problem = /^[a-z][a-z0-9+.-]*:/i.test(entry)
      ? 'is not a valid URL'
      : 'is missing its scheme (http:// or https://)';
    throw invalid(value, `proxy URL "${redactText(entry)}" ${problem}`);
  }
  if (url.protocol === 'file:') {
    throw invalid(
      value,
      `file:// proxy "${redactedBase(url)}" is not supported by this server; use http:// or https://`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(value, `proxy URL "${redactedBase(url)}" must use http:// or https://`);
  }
  if (url.hostname === '') {
    throw invalid(value, `proxy URL "${redactText(entry)}" has no host`);
  }
  return entry;
}

function invalid(value: string, problem: string): ModuleError {
  return errors.invalidArgument(OP, `invalid GOPROXY "${redactText(value)}": ${problem}`);
}
