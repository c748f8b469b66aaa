import { errors } from '@modproxy/errors';
import { matchPrefixPatterns } from './prefix-patterns';

export interface ModuleFilterOptions {
  /**
   * GOPRIVATE-style globs (comma-separated, matched against leading path elements). When it
   * holds at least one glob, only modules matching one are served. @default every module
   */
  allow?: string;
  /** GOPRIVATE-style globs of modules never served; deny wins over allow. @default none */
  deny?: string;
}

/** Why a module is refused, if it is. */
export type ModuleRefusal = 'denied' | 'not-allowed';

/**
 * Which modules a server serves at all, by configuration: a denied module (or, with an allow
 * list, one outside it) is refused before storage or any upstream is asked about it.
 */
export class ModuleFilter {
  private readonly allow: string;
  private readonly deny: string;
  private readonly hasAllowList: boolean;

  constructor(options: ModuleFilterOptions = {}) {
    this.allow = options.allow ?? '';
    this.deny = options.deny ?? '';
    this.hasAllowList = this.allow.split(',').some((glob) => glob.replace(/\/$/, '') !== '');
  }

  /** True when the filter refuses some modules (so callers can skip it otherwise). */
  get active(): boolean {
    return this.hasAllowList || this.deny.split(',').some((glob) => glob.replace(/\/$/, '') !== '');
  }

  refusal(module: string): ModuleRefusal | undefined {
    if (matchPrefixPatterns(this.deny, module)) return 'denied';
    if (this.hasAllowList && !matchPrefixPatterns(this.allow, module)) return 'not-allowed';
    return undefined;
  }

  allows(module: string): boolean {
    return this.refusal(module) === undefined;
  }

  /** Throws `forbidden` (403, PERMISSION_DENIED) for a refused module. */
  check(op: string, module: string, version?: string): void {
    const refusal = this.refusal(module);
    if (refusal === undefined) return;
    const why = refusal === 'denied' ? 'is denied by' : 'is not allowed by';
    throw errors.forbidden(op, `module ${module} ${why} this server's module filter`, { module, version });
  }
}
