import type { Redis } from 'ioredis';
import { redactText } from '@modproxy/config';
import type { ModuleError } from '@modproxy/errors';
import { HostLimitTable, HostPoliteness } from '@modproxy/queue';
import { BoundedRing } from './bounded-ring';
import { FetchQueueHistory } from './fetch-queue-history';
import type { FetchedVersion, FetchFailure, QueueReadState, StatusSnapshot } from './status-snapshot';

export interface ProxyStatusOptions {
  /** Fetched versions and failures this process keeps in memory, and rows per list shown. @default 50 */
  capacity?: number;
  /**
   * The queue Redis and its prefix (QUEUE_PREFIX), in the production shape: the fetch queue's
   * recent jobs and the hosts' politeness state are read from it. Shared, not closed here.
   */
  queue?: { connection: Redis; prefix: string };
  /** Hosts shown, most recently used first. @default 50 */
  hosts?: number;
  /**
   * Cleans what is shown of the process's secrets (a SecretRedactor's `redact`). URL userinfo is
   * removed either way. @default redactText
   */
  redact?: (text: string) => string;
  /** Deadline of each read from the queue Redis, which waits for a reconnection otherwise. @default 2000 */
  readTimeoutMs?: number;
  /** @default () => new Date() */
  now?: () => Date;
}

/**
 * The data of the proxy's status page: versions this process fetched and fetches that failed
 * (bounded rings fed by ModuleService's `fetched` and `fetchFailed` events), and in the
 * production shape what the fetch queue's recent jobs say and crathens' per-host crawl state
 * (libs/queue `HostPoliteness.states()`), read when the page is asked for.
 */
export class ProxyStatus {
  private readonly capacity: number;
  private readonly hostsShown: number;
  private readonly fetchedHere: BoundedRing<FetchedVersion>;
  private readonly failedHere: BoundedRing<FetchFailure>;
  private readonly history: FetchQueueHistory | undefined;
  private readonly politeness: HostPoliteness | undefined;
  private readonly redact: (text: string) => string;
  private readonly readTimeoutMs: number;
  private readonly now: () => Date;

  constructor(options: ProxyStatusOptions = {}) {
    this.capacity = options.capacity ?? 50;
    this.hostsShown = options.hosts ?? 50;
    this.fetchedHere = new BoundedRing(this.capacity);
    this.failedHere = new BoundedRing(this.capacity);
    this.redact = options.redact ?? redactText;
    this.readTimeoutMs = options.readTimeoutMs ?? 2_000;
    this.now = options.now ?? (() => new Date());
    if (options.queue) {
      const { connection, prefix } = options.queue;
      this.history = new FetchQueueHistory({ connection, prefix });
      // Reads only: the limits are crathens' (HOST_CONCURRENCY, …), which the page does not show.
      this.politeness = new HostPoliteness({
        redis: connection,
        prefix,
        limits: new HostLimitTable({ concurrency: 1, ratePerSecond: 0, burst: 1 }),
      });
    }
  }

  /** ModuleService's `fetched` event: this process fetched and stored module@version. */
  recordFetched(module: string, version: string, durationMs: number): void {
    this.fetchedHere.push({ module, version, at: this.now(), durationMs, by: 'this process' });
  }

  /** ModuleService's `fetchFailed` event. A client that went away is no failure. */
  recordFailure(module: string, version: string, error: ModuleError): void {
    if (error.kind === 'cancelled') return;
    this.failedHere.push({
      module,
      version,
      kind: error.kind,
      message: error.message,
      ...(error.detail ? { detail: error.detail } : {}),
      at: this.now(),
      by: 'this process',
    });
  }

  /** Everything the page shows, with every text from outside redacted. */
  async snapshot(): Promise<StatusSnapshot> {
    const [completed, failed, hosts] = await Promise.all([
      this.read((history) => history.completed(this.capacity), this.history),
      this.read((history) => history.failed(this.capacity), this.history),
      this.read((politeness) => politeness.states(this.hostsShown), this.politeness),
    ]);
    const newestFirst = <T extends { at: Date }>(items: T[]) =>
      items.sort((a, b) => b.at.getTime() - a.at.getTime()).slice(0, this.capacity);
    return {
      generatedAt: this.now(),
      fetched: newestFirst([...this.fetchedHere.list(), ...(completed.items ?? [])]),
      failures: newestFirst([...this.failedHere.list(), ...(failed.items ?? [])]).map((failure) =>
        this.redactFailure(failure),
      ),
      // Either read failing means the queue's lists are incomplete.
      queue: completed.state.state === 'ok' ? failed.state : completed.state,
      hostsState: hosts.state,
      hosts: (hosts.items ?? []).map((host) => ({
        ...host,
        recentFailures: host.recentFailures.map((record) => ({
          ...record,
          message: this.redact(record.message),
        })),
      })),
    };
  }

  async close(): Promise<void> {
    await this.history?.close();
  }

  private redactFailure(failure: FetchFailure): FetchFailure {
    return {
      ...failure,
      message: this.redact(failure.message),
      ...(failure.detail === undefined ? {} : { detail: this.redact(failure.detail) }),
    };
  }

  /** A read from the queue Redis under the deadline, or why there is nothing to show. */
  private async read<S, T>(
    read: (source: S) => Promise<T[]>,
    source: S | undefined,
  ): Promise<{ state: QueueReadState; items?: T[] }> {
    if (!source) return { state: { state: 'not-configured' } };
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the queue Redis did not answer within ${this.readTimeoutMs} ms`)),
        this.readTimeoutMs,
      );
    });
    const reading = read(source);
    // A read that ends after the deadline must not be reported as unhandled.
    reading.catch(() => undefined);
    try {
      return { state: { state: 'ok' }, items: await Promise.race([reading, deadline]) };
    } catch (error) {
      return { state: { state: 'unavailable', reason: this.redact((error as Error).message) } };
    } finally {
      clearTimeout(timer);
    }
  }
}
