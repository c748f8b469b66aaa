import { errors } from '@modproxy/errors';
import { matchPrefixPatterns } from '@modproxy/gomod';

/**
 * What a request for a version storage does not hold does (Athens' download modes):
 * - `sync`: fetch it now (once, however many ask), store it, serve it;
 * - `async`: start that fetch and answer not-found at once, so the go command falls through
 *   to its next GOPROXY entry;
 * - `none`: never fetch; serve only what storage holds (list and latest too);
 * - `redirect`: answer with a redirect to another proxy for that path, fetch nothing;
 * - `async_redirect`: redirect, and start the fetch so the next request is served here.
 */
export type DownloadMode = 'sync' | 'async' | 'none' | 'redirect' | 'async_redirect';

export const DOWNLOAD_MODES: readonly DownloadMode[] = [
  'sync',
  'async',
  'none',
  'redirect',
  'async_redirect',
];

/** The modes that answer a miss with a redirect, and so need a redirect URL. */
export function redirects(mode: DownloadMode): boolean {
  return mode === 'redirect' || mode === 'async_redirect';
}

/** The download mode of the modules a pattern matches. */
export interface DownloadRule {
  /** GOPRIVATE-style globs (comma-separated), matched against leading path elements. */
  pattern: string;
  mode: DownloadMode;
  /** Where `redirect` and `async_redirect` send clients; default: the policy's. */
  redirectUrl?: string;
}

export interface DownloadPolicyOptions {
  /** The mode of modules no rule matches. @default 'sync' */
  mode?: DownloadMode;
  /** Where redirects go when the matching rule names no URL of its own. */
  redirectUrl?: string;
  /** Tried in order; the first whose pattern matches decides. @default none */
  rules?: readonly DownloadRule[];
}

/** The mode (and redirect target) that applies to one module. */
export interface DownloadDecision {
  mode: DownloadMode;
  /** Set exactly when the mode redirects: an absolute http(s) base URL, no trailing slash. */
  redirectUrl?: string;
}

/**
 * The download mode of every module: a default, and an ordered list of rules whose patterns
 * are matched as the go command matches GOPRIVATE (libs/gomod `matchPrefixPatterns`); the
 * first rule that matches wins, as in Athens' download file. A redirect mode without a URL is
 * refused here, so a policy that exists can always answer.
 */
export class DownloadPolicy {
  readonly defaultMode: DownloadMode;
  private readonly redirectUrl: string | undefined;
  private readonly rules: readonly DownloadRule[];

  constructor(options: DownloadPolicyOptions = {}) {
    this.defaultMode = options.mode ?? 'sync';
    this.redirectUrl = options.redirectUrl === undefined ? undefined : trimSlash(options.redirectUrl);
    this.rules = (options.rules ?? []).map((rule) => ({
      ...rule,
      ...(rule.redirectUrl === undefined ? {} : { redirectUrl: trimSlash(rule.redirectUrl) }),
    }));
    const needsUrl = [
      { mode: this.defaultMode, url: undefined as string | undefined, what: 'the default mode' },
      ...this.rules.map((rule, i) => ({ mode: rule.mode, url: rule.redirectUrl, what: `rule ${i}` })),
    ].find(({ mode, url }) => redirects(mode) && (url ?? this.redirectUrl) === undefined);
    if (needsUrl) {
      throw errors.invalidArgument(
        'download.policy',
        `${needsUrl.what} redirects but no redirect URL is set`,
      );
    }
  }

  /** One mode for every module. */
  static uniform(mode: DownloadMode, redirectUrl?: string): DownloadPolicy {
    return new DownloadPolicy({ mode, ...(redirectUrl === undefined ? {} : { redirectUrl }) });
  }

  /** True when some module may be fetched (so list and latest may ask upstream). */
  get fetchesAny(): boolean {
    return this.defaultMode !== 'none' || this.rules.some((rule) => rule.mode !== 'none');
  }

  decide(module: string): DownloadDecision {
    const rule = this.rules.find((candidate) => matchPrefixPatterns(candidate.pattern, module));
    const mode = rule?.mode ?? this.defaultMode;
    if (!redirects(mode)) return { mode };
    return { mode, redirectUrl: rule?.redirectUrl ?? this.redirectUrl ?? '' };
  }
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
