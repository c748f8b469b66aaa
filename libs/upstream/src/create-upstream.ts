import { DirectUpstream, type DirectUpstreamOptions } from './direct-upstream';
import { GoproxyUpstream, type GoproxyUpstreamOptions } from './goproxy-upstream';
import { ObservedUpstream, proxyHostOf, vcsHostOf, type UpstreamCallListener } from './observed-upstream';
import { parseGoproxyList } from './parse-goproxy';
import { createUpstreamChain, type UpstreamChain, type UpstreamChainOptions } from './upstream-chain';

export interface UpstreamFromListOptions extends UpstreamChainOptions {
  /** Options of every `direct` entry (the go command). */
  direct: DirectUpstreamOptions;
  /** Options of every upstream proxy URL entry, the URL aside. */
  goproxy: Omit<GoproxyUpstreamOptions, 'url'>;
  /** Told of every call to every link (upstream kind, host, method, result, duration). @default none */
  onCall?: UpstreamCallListener;
}

/** The upstream a GOPROXY-style list names (`https://a,https://b|direct`), built from configuration. */
export function createUpstreamFromList(list: string, options: UpstreamFromListOptions): UpstreamChain {
  const { onCall } = options;
  return createUpstreamChain(
    parseGoproxyList(list),
    {
      direct: () => {
        const direct = new DirectUpstream(options.direct);
        return onCall ? new ObservedUpstream(direct, 'direct', vcsHostOf, onCall) : direct;
      },
      goproxy: (url) => {
        const goproxy = new GoproxyUpstream({ ...options.goproxy, url });
        if (!onCall) return goproxy;
        const host = proxyHostOf(url);
        return new ObservedUpstream(goproxy, 'goproxy', () => host, onCall);
      },
    },
    options.moduleFilter ? { moduleFilter: options.moduleFilter } : {},
  );
}
