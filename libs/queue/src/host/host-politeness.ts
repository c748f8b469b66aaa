import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { HostLimitTable } from './host-limits';
import { normalizeHost } from './host-limits';
import { ACQUIRE_LUA, EXTEND_LUA, READ_STATE_LUA, RELEASE_LUA } from './host-scripts';

export interface HostPolitenessOptions {
  /**
   * The queue Redis (never evicting: a lost lease set would let a host be overloaded). Not
   * closed by this class. Scripts are defined on it under `modproxyHost*` names.
   */
  redis: Redis;
  /** The limits of every host. */
  limits: HostLimitTable;
  /** Key prefix, e.g. the BullMQ prefix. @default 'modproxy' */
  prefix?: string;
  /** Pause after a host's first failure, doubled per further consecutive failure. @default 1000 */
  failureBackoffMs?: number;
  /** The longest pause, also the cap on a `Retry-After` a host asks for. @default 300000 */
  failureBackoffMaxMs?: number;
  /**
   * How long a slot stays taken without `extend`: a worker killed mid-request gives its slots
   * back after this. @default 30000
   */
  leaseMs?: number;
  /** Failures kept per host for the status page. @default 10 */
  recentFailures?: number;
}

/** Why a host refused a slot. */
export type HostRefusal = 'cooldown' | 'concurrency' | 'rate';

export interface HostLease {
  readonly host: string;
  readonly id: string;
}

export type HostDecision =
  | { granted: true; lease: HostLease }
  | {
      granted: false;
      host: string;
      reason: HostRefusal;
      /** When a retry may succeed, relative to now; 0 when unknown (the host is at its concurrency). */
      retryAfterMs: number;
    };

/** How a request to a host ended, as far as the host's health is concerned. */
export type HostOutcome =
  | { kind: 'success' }
  /** The host failed or asked us to slow down (429/503, with `retryAfterMs` from Retry-After). */
  | { kind: 'failure'; errorKind: string; message: string; retryAfterMs?: number }
  /** Says nothing about the host (we cancelled, our own storage failed). */
  | { kind: 'neutral' };

export interface HostFailureRecord {
  at: Date;
  /** The ModuleError kind, e.g. `bad-gateway`, `timeout`, `unavailable`. */
  errorKind: string;
  message: string;
  /** The pause this failure started (or would have, had a longer one not been running). */
  pauseMs: number;
}

/** One host's crawl and fetch state, for a status page. */
export interface HostState {
  host: string;
  limit: { concurrency: number; ratePerSecond: number; burst: number };
  inFlight: number;
  /** Set while the host is paused (after failures or a Retry-After). */
  coolingDownUntil: Date | undefined;
  consecutiveFailures: number;
  lastStartAt: Date | undefined;
  lastSuccessAt: Date | undefined;
  lastFailureAt: Date | undefined;
  /** Newest first. */
  recentFailures: HostFailureRecord[];
}

const DAY_MS = 24 * 3_600_000;
/** Jobs kept in one host's line; more wake up by their own timers. */
const MAX_PARKED = 10_000;
/** Messages in failure records are cut here: the status page shows a line, not a page. */
const MESSAGE_CHARS = 300;

interface ScriptedRedis {
  modproxyHostAcquire(...args: Array<string | number>): Promise<[number, number, string]>;
  modproxyHostExtend(...args: Array<string | number>): Promise<number>;
  modproxyHostRelease(...args: Array<string | number>): Promise<number>;
  modproxyHostState(...args: Array<string | number>): Promise<[number, number, string[], string[]]>;
}

/**
 * Per-host politeness shared by every worker process through Redis: a semaphore of expiring
 * leases (concurrency), a token bucket (rate) and a cooldown (Retry-After and consecutive
 * failures, exponential and capped). A caller asks for a slot before it sends work to a host
 * and gives it back, with the outcome, after.
 */
export class HostPoliteness {
  readonly limits: HostLimitTable;
  readonly leaseMs: number;
  private readonly redis: Redis;
  private readonly scripts: ScriptedRedis;
  private readonly prefix: string;
  private readonly failureBackoffMs: number;
  private readonly failureBackoffMaxMs: number;
  private readonly recentFailures: number;
  private readonly stateTtlMs: number;

  constructor(options: HostPolitenessOptions) {
    this.redis = options.redis;
    this.limits = options.limits;
    this.prefix = options.prefix ?? 'modproxy';
    this.failureBackoffMs = options.failureBackoffMs ?? 1_000;
    this.failureBackoffMaxMs = Math.max(this.failureBackoffMs, options.failureBackoffMaxMs ?? 300_000);
    this.leaseMs = options.leaseMs ?? 30_000;
    this.recentFailures = Math.max(1, options.recentFailures ?? 10);
    // A pause must outlive its state; an idle host's state goes after a day.
    this.stateTtlMs = Math.max(DAY_MS, 2 * this.failureBackoffMaxMs);
    const redis = this.redis;
    redis.defineCommand('modproxyHostAcquire', { numberOfKeys: 4, lua: ACQUIRE_LUA });
    redis.defineCommand('modproxyHostExtend', { numberOfKeys: 1, lua: EXTEND_LUA });
    redis.defineCommand('modproxyHostRelease', { numberOfKeys: 3, lua: RELEASE_LUA });
    redis.defineCommand('modproxyHostState', { numberOfKeys: 3, lua: READ_STATE_LUA });
    this.scripts = redis as unknown as ScriptedRedis;
  }

  /** A slot of `host`, or why not and when to ask again. */
  async acquire(host: string): Promise<HostDecision> {
    const name = normalizeHost(host);
    const limit = this.limits.limitFor(name);
    const id = randomUUID();
    const keys = this.keys(name);
    const [granted, retryAfterMs, reason] = await this.scripts.modproxyHostAcquire(
      keys.leases,
      keys.bucket,
      keys.state,
      this.hostsKey,
      id,
      this.leaseMs,
      limit.concurrency,
      limit.ratePerSecond,
      limit.burst,
      name,
      this.stateTtlMs,
    );
    if (granted === 1) return { granted: true, lease: { host: name, id } };
    return { granted: false, host: name, reason: reason as HostRefusal, retryAfterMs: Number(retryAfterMs) };
  }

  /**
   * Puts a job refused for concurrency in the host's line for `queue`, so that the next slot
   * given back wakes it ({@link nextParked}) instead of its own timer. The line is bounded:
   * beyond `maxParked` the oldest entries drop out (their timers still wake them).
   */
  async park(host: string, queue: string, jobId: string): Promise<void> {
    const key = this.parkedKey(normalizeHost(host), queue);
    await this.redis
      .multi()
      .rpush(key, jobId)
      .ltrim(key, -MAX_PARKED, -1)
      .pexpire(key, this.stateTtlMs)
      .exec();
  }

  /** Jobs in the host's line for `queue` now (some may have been woken by their timers since). */
  async lineLength(host: string, queue: string): Promise<number> {
    return this.redis.llen(this.parkedKey(normalizeHost(host), queue));
  }

  /** The job that has waited longest for a slot of `host` in `queue`, taken out of the line. */
  async nextParked(host: string, queue: string): Promise<string | undefined> {
    return (await this.redis.lpop(this.parkedKey(normalizeHost(host), queue))) ?? undefined;
  }

  /** Keeps a lease from expiring; call well within `leaseMs` while the request runs. */
  async extend(lease: HostLease): Promise<void> {
    await this.scripts.modproxyHostExtend(this.keys(lease.host).leases, lease.id, this.leaseMs);
  }

  /** Gives the slot back and records the outcome. */
  async release(lease: HostLease, outcome: HostOutcome): Promise<void> {
    await this.record(lease.host, outcome, lease.id);
  }

  /** Records an outcome of work done without a lease (e.g. a discovery request made on the side). */
  async report(host: string, outcome: HostOutcome): Promise<void> {
    await this.record(normalizeHost(host), outcome, '');
  }

  async state(host: string): Promise<HostState> {
    const name = normalizeHost(host);
    const keys = this.keys(name);
    const [now, inFlight, fields, failures] = await this.scripts.modproxyHostState(
      keys.leases,
      keys.state,
      keys.failures,
    );
    const state = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) state.set(fields[i] ?? '', fields[i + 1] ?? '');
    const time = (field: string): Date | undefined => {
      const value = Number(state.get(field));
      return Number.isFinite(value) && value > 0 ? new Date(value) : undefined;
    };
    const cooldownUntil = Number(state.get('cooldownUntil') ?? 0);
    return {
      host: name,
      limit: { ...this.limits.limitFor(name) },
      inFlight: Number(inFlight),
      coolingDownUntil: cooldownUntil > Number(now) ? new Date(cooldownUntil) : undefined,
      consecutiveFailures: Number(state.get('consecutiveFailures') ?? 0),
      lastStartAt: time('lastStartAt'),
      lastSuccessAt: time('lastSuccessAt'),
      lastFailureAt: time('lastFailureAt'),
      recentFailures: failures.map(parseFailure),
    };
  }

  /** The hosts used most recently, newest first, with their state. */
  async states(limit = 100): Promise<HostState[]> {
    const hosts = await this.redis.zrevrange(this.hostsKey, 0, Math.max(0, limit - 1));
    return Promise.all(hosts.map((host) => this.state(host)));
  }

  private async record(host: string, outcome: HostOutcome, leaseId: string): Promise<void> {
    const keys = this.keys(host);
    const failure =
      outcome.kind === 'failure'
        ? JSON.stringify({ errorKind: outcome.errorKind, message: outcome.message.slice(0, MESSAGE_CHARS) })
        : '{}';
    const retryAfterMs = outcome.kind === 'failure' ? Math.max(0, Math.ceil(outcome.retryAfterMs ?? 0)) : 0;
    await this.scripts.modproxyHostRelease(
      keys.leases,
      keys.state,
      keys.failures,
      leaseId,
      outcome.kind,
      retryAfterMs,
      this.failureBackoffMs,
      this.failureBackoffMaxMs,
      failure,
      this.recentFailures,
      this.stateTtlMs,
    );
  }

  private get hostsKey(): string {
    return `${this.prefix}:hosts`;
  }

  private parkedKey(host: string, queue: string): string {
    return `${this.prefix}:host:${host}:parked:${queue}`;
  }

  private keys(host: string): { leases: string; bucket: string; state: string; failures: string } {
    const base = `${this.prefix}:host:${host}`;
    return {
      leases: `${base}:leases`,
      bucket: `${base}:bucket`,
      state: `${base}:state`,
      failures: `${base}:failures`,
    };
  }
}

function parseFailure(text: string): HostFailureRecord {
  try {
    const record = JSON.parse(text) as Partial<
      Record<'at' | 'pauseMs', number> & Record<'errorKind' | 'message', string>
    >;
    return {
      at: new Date(record.at ?? 0),
      errorKind: record.errorKind ?? 'unknown',
      message: record.message ?? '',
      pauseMs: record.pauseMs ?? 0,
    };
  } catch {
    return { at: new Date(0), errorKind: 'unknown', message: text.slice(0, MESSAGE_CHARS), pauseMs: 0 };
  }
}
