import { parseGoproxyList } from '../parse-goproxy';

/**
 * The host whose politeness limits a module's fetch or crawl counts against: the first entry
 * of the GOPROXY-style list decides. For `direct`, the module path's first element (its VCS
 * host, or the vanity host asked first); for an upstream proxy, the proxy's host (with its
 * port); undefined for `off`. A fetch may fall through to later entries, but the first one is
 * where every fetch goes first, so that is what is limited.
 */
export function politenessHost(upstreamList: string, module: string): string | undefined {
  return politenessHostOf(upstreamList)(module);
}

/** {@link politenessHost} with the list parsed once. */
export function politenessHostOf(upstreamList: string): (module: string) => string | undefined {
  const first = parseGoproxyList(upstreamList)[0];
  if (!first || first.kind === 'off') return () => undefined;
  if (first.kind === 'direct') return (module) => module.split('/', 1)[0]?.toLowerCase();
  const host = new URL(first.url).host.toLowerCase();
  return () => host;
}
