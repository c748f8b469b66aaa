import { DirectUpstream, type DirectUpstreamOptions } from './direct-upstream';
import { GoproxyUpstream, type GoproxyUpstreamOptions } from './goproxy-upstream';
import { parseGoproxyList } from './parse-goproxy';
import { createUpstreamChain, type UpstreamChain, type UpstreamChainOptions } from './upstream-chain';

export interface UpstreamFromListOptions extends UpstreamChainOptions {
  /** Options of every `direct` entry (the go command). */
  direct: DirectUpstreamOptions;
  /** Options of every upstream proxy URL entry, the URL aside. */
  goproxy: Omit<GoproxyUpstreamOptions, 'url'>;
}

/** The upstream a GOPROXY-style list names (`https://a,https://b|direct`), built from configuration. */
export function createUpstreamFromList(list: string, options: UpstreamFromListOptions): UpstreamChain {
  return createUpstreamChain(
    parseGoproxyList(list),
    {
      direct: () => new DirectUpstream(options.direct),
      goproxy: (url) => new GoproxyUpstream({ ...options.goproxy, url }),
    },
    options.moduleFilter ? { moduleFilter: options.moduleFilter } : {},
  );
}
