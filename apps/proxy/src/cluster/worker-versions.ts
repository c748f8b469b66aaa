import { isModuleError, type ModuleError } from '@modproxy/errors';
import { waitFor } from '@modproxy/module-service';
import type { CallOptions } from '@modproxy/storage';
import type { LatestAnswer, ListAnswer, VersionsProvider } from '@modproxy/versions';
import type { SerializedVersionsAnswer } from './cluster-messages';
import type { PrimaryChannel } from './primary-channel';

export interface WorkerVersionsOptions {
  /**
   * How long a worker answers from its copy of the primary's answer before it asks again: the
   * hot path stays in the worker, and workers disagree for at most this long. @default 1000
   */
  keepMs?: number;
  /** Copies kept at most; past it the expired ones go, then all. @default 10000 */
  maxEntries?: number;
  /** @default Date.now */
  now?: () => number;
}

type Kept = { at: number; answer: ListAnswer | LatestAnswer } | { at: number; notFound: ModuleError };

/**
 * A worker's `/@v/list` and `/@latest`: the primary's embedded cache (one freshness policy, one
 * upstream call per module per soft TTL for the machine, stale answers when upstream fails even
 * for a worker that never asked before), with the primary's answer (or its "not found") kept
 * for `keepMs` so that a warm request costs no IPC. A version the primary stores drops the
 * copies of its module at once ({@link observe}), so it is listed by every worker as soon as
 * it is served. Concurrent requests for one answer share one IPC request.
 */
export class WorkerVersions implements VersionsProvider {
  private readonly keepMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly kept = new Map<string, Kept>();
  private readonly asking = new Map<string, Promise<ListAnswer | LatestAnswer>>();

  constructor(
    private readonly primary: PrimaryChannel,
    options: WorkerVersionsOptions = {},
  ) {
    this.keepMs = options.keepMs ?? 1_000;
    this.maxEntries = options.maxEntries ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  list(module: string, options: CallOptions = {}): Promise<ListAnswer> {
    return this.answer('list', module, options) as Promise<ListAnswer>;
  }

  latest(module: string, options: CallOptions = {}): Promise<LatestAnswer> {
    return this.answer('latest', module, options) as Promise<LatestAnswer>;
  }

  /** The primary stored a version of module: the next answer comes from its cache. */
  async observe(module: string): Promise<void> {
    this.kept.delete(`list ${module}`);
    this.kept.delete(`latest ${module}`);
  }

  async close(): Promise<void> {
    this.kept.clear();
  }

  private answer(
    kind: 'list' | 'latest',
    module: string,
    options: CallOptions,
  ): Promise<ListAnswer | LatestAnswer> {
    const key = `${kind} ${module}`;
    const kept = this.kept.get(key);
    if (kept && this.now() - kept.at < this.keepMs) {
      return 'answer' in kept ? Promise.resolve(kept.answer) : Promise.reject(kept.notFound);
    }
    let asking = this.asking.get(key);
    if (!asking) {
      asking = this.ask(kind, module, key).finally(() => this.asking.delete(key));
      this.asking.set(key, asking);
    }
    return waitFor(asking, options.signal, { op: `versions.${kind}`, module });
  }

  private async ask(
    kind: 'list' | 'latest',
    module: string,
    key: string,
  ): Promise<ListAnswer | LatestAnswer> {
    const at = this.now();
    try {
      const answer = decode(await this.primary.versions(kind, module));
      this.keep(key, { at, answer });
      return answer;
    } catch (error) {
      if (isModuleError(error, 'not-found')) this.keep(key, { at, notFound: error });
      throw error;
    }
  }

  private keep(key: string, entry: Kept): void {
    if (this.kept.size >= this.maxEntries) {
      const now = this.now();
      for (const [name, kept] of this.kept) if (now - kept.at >= this.keepMs) this.kept.delete(name);
      if (this.kept.size >= this.maxEntries) this.kept.clear();
    }
    this.kept.set(key, entry);
  }
}

function decode(answer: SerializedVersionsAnswer): ListAnswer | LatestAnswer {
  const { source, stale } = answer;
  return answer.versions
    ? { versions: answer.versions, source, stale }
    : { info: Buffer.from(answer.info ?? '', 'utf8'), source, stale };
}
