import type { Redis } from 'ioredis';
import { errors, isErrorKind } from '@modproxy/errors';
import { RedisScript } from './redis-script';
import {
  DEFAULT_OBSERVED_TTL_MS,
  DEFAULT_RETAIN_MS,
  type AnswerKind,
  type RecordedFailure,
  type RecordedNotFound,
  type StoredEntry,
  type VersionStore,
  type VersionStoreRetention,
} from './version-store';

export interface RedisVersionStoreOptions extends VersionStoreRetention {
  /**
   * The connection (see `createCacheRedis`). The store does not close it: its owner does,
   * so one connection can serve several users.
   */
  redis: Redis;
  /** Prefix of every key, so that one Redis can hold several caches. Default: `lathens:`. */
  keyPrefix?: string;
}

/**
 * Reads everything about one answer in one round trip, and records the request when an
 * answer exists (never creating a key without its TTL).
 * KEYS: answer, negative, failure, lease, observed. ARGV: touchAt ('' for none), read observed ('1'/'0').
 */
const READ = new RedisScript(`
local a = redis.call('HMGET', KEYS[1], 'data', 'fetchedAt', 'requestedAt')
if a[1] and ARGV[1] ~= '' then
  redis.call('HSET', KEYS[1], 'requestedAt', ARGV[1])
  a[3] = ARGV[1]
end
local observed = {}
if ARGV[2] == '1' then observed = redis.call('SMEMBERS', KEYS[5]) end
return {a[1], a[2], a[3], redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]), redis.call('EXISTS', KEYS[4]), observed}
`);

/** KEYS: answer, negative, failure. ARGV: data, fetchedAt, retainMs. */
const SAVE_ANSWER = new RedisScript(`
local requested = redis.call('HGET', KEYS[1], 'requestedAt')
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'fetchedAt', ARGV[2], 'requestedAt', requested or ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('DEL', KEYS[2], KEYS[3])
return 1
`);

/** KEYS: negative, failure. ARGV: the negative entry (JSON), ttlMs. */
const SAVE_NOT_FOUND = new RedisScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
`);

/** KEYS: answer. */
const EXPIRE = new RedisScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'fetchedAt', '0') end
return 1
`);

/** KEYS: observed, then the negative entries to drop. ARGV: version, ttlMs. */
const OBSERVE = new RedisScript(`
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
return 1
`);

/** KEYS: the answers to expire, then (from ARGV[1] + 1 on) the keys to delete. ARGV: number of answers. */
const INVALIDATE = new RedisScript(`
local answers = tonumber(ARGV[1])
for i = 1, #KEYS do
  if i <= answers then
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('HSET', KEYS[i], 'fetchedAt', '0') end
  else
    redis.call('DEL', KEYS[i])
  end
end
return 1
`);

/** KEYS: lease. ARGV: token. */
const RELEASE = new RedisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

const KINDS: readonly AnswerKind[] = ['list', 'latest'];

/**
 * The shared store of lathens replicas: one Redis. Every module's keys carry the module as a
 * hash tag (`{module}`), so each script touches one slot and the layout also fits Redis
 * Cluster. Keys per module and kind: `a:` answer hash (data, fetchedAt, requestedAt; TTL the
 * retention), `n:` negative entry, `f:` failure record, `l:` lease (each with its own TTL), and
 * per module `o:` the observed set (TTL `observedTtlMs`).
 */
export class RedisVersionStore implements VersionStore {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly retainMs: number;
  private readonly observedTtlMs: number;

  constructor(options: RedisVersionStoreOptions) {
    this.redis = options.redis;
    this.prefix = options.keyPrefix ?? 'lathens:';
    this.retainMs = options.retainMs ?? DEFAULT_RETAIN_MS;
    this.observedTtlMs = options.observedTtlMs ?? DEFAULT_OBSERVED_TTL_MS;
  }

  async read(kind: AnswerKind, module: string, touchAt?: number): Promise<StoredEntry> {
    const keys = [
      this.key('a', kind, module),
      this.key('n', kind, module),
      this.key('f', kind, module),
      this.key('l', kind, module),
      this.observedKey(module),
    ];
    const reply = await READ.run(this.redis, keys, [
      touchAt === undefined ? '' : String(touchAt),
      kind === 'list' ? '1' : '0',
    ]);
    if (!Array.isArray(reply) || reply.length !== 7)
      throw errors.internal('versions.redis.read', 'unexpected reply from Redis');
    const [data, fetchedAt, requestedAt, notFound, failure, leased, observed] = reply as unknown[];
    const entry: StoredEntry = {
      observed: Array.isArray(observed) ? observed.map((version) => String(version)) : [],
      leased: leased === 1,
    };
    if (Buffer.isBuffer(data)) {
      entry.answer = { data, fetchedAt: Number(String(fetchedAt)), requestedAt: Number(String(requestedAt)) };
    }
    if (Buffer.isBuffer(notFound)) entry.notFound = parseNotFound(notFound.toString('utf8'));
    if (Buffer.isBuffer(failure)) {
      const parsed = parseFailure(failure.toString('utf8'));
      if (parsed) entry.failure = parsed;
    }
    return entry;
  }

  async saveAnswer(kind: AnswerKind, module: string, data: Buffer, fetchedAt: number): Promise<void> {
    const keys = [this.key('a', kind, module), this.key('n', kind, module), this.key('f', kind, module)];
    await SAVE_ANSWER.run(this.redis, keys, [data, String(fetchedAt), String(this.retainMs)]);
  }

  async saveNotFound(
    kind: AnswerKind,
    module: string,
    notFound: RecordedNotFound,
    ttlMs: number,
  ): Promise<void> {
    const keys = [this.key('n', kind, module), this.key('f', kind, module)];
    await SAVE_NOT_FOUND.run(this.redis, keys, [
      JSON.stringify(notFound),
      String(Math.max(1, Math.round(ttlMs))),
    ]);
  }

  async saveFailure(
    kind: AnswerKind,
    module: string,
    failure: RecordedFailure,
    ttlMs: number,
  ): Promise<void> {
    await this.redis.set(
      this.key('f', kind, module),
      JSON.stringify(failure),
      'PX',
      Math.max(1, Math.round(ttlMs)),
    );
  }

  async expire(kind: AnswerKind, module: string): Promise<void> {
    await EXPIRE.run(this.redis, [this.key('a', kind, module)], []);
  }

  async observe(module: string, version: string): Promise<void> {
    const keys = [this.observedKey(module), ...KINDS.map((kind) => this.key('n', kind, module))];
    await OBSERVE.run(this.redis, keys, [version, String(this.observedTtlMs)]);
  }

  async invalidate(module: string): Promise<void> {
    const answers = KINDS.map((kind) => this.key('a', kind, module));
    const dropped = KINDS.flatMap((kind) => [this.key('n', kind, module), this.key('f', kind, module)]);
    await INVALIDATE.run(this.redis, [...answers, ...dropped], [String(answers.length)]);
  }

  async acquireLease(kind: AnswerKind, module: string, token: string, ttlMs: number): Promise<boolean> {
    const reply = await this.redis.set(
      this.key('l', kind, module),
      token,
      'PX',
      Math.max(1, Math.round(ttlMs)),
      'NX',
    );
    return reply === 'OK';
  }

  async releaseLease(kind: AnswerKind, module: string, token: string): Promise<void> {
    await RELEASE.run(this.redis, [this.key('l', kind, module)], [token]);
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  /** The connection belongs to the caller (see the `redis` option). */
  async close(): Promise<void> {}

  private key(type: 'a' | 'n' | 'f' | 'l', kind: AnswerKind, module: string): string {
    return `${this.prefix}${type}:${kind}:{${module}}`;
  }

  private observedKey(module: string): string {
    return `${this.prefix}o:{${module}}`;
  }
}

/** A failure record written by another replica; anything unreadable counts as none. */
function parseFailure(text: string): RecordedFailure | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null) return undefined;
    const { at, kind, message, retryAfterSeconds, detail } = value as Record<string, unknown>;
    if (typeof at !== 'number' || !isErrorKind(kind) || typeof message !== 'string') {
      return undefined;
    }
    return {
      at,
      kind,
      message,
      ...(typeof retryAfterSeconds === 'number' &&
      Number.isFinite(retryAfterSeconds) &&
      retryAfterSeconds >= 0
        ? { retryAfterSeconds }
        : {}),
      ...(typeof detail === 'string' ? { detail } : {}),
    };
  } catch {
    return undefined;
  }
}

/**
 * A negative entry written by another replica: JSON with its kind, or (written before the kind
 * was kept) the bare message of a 404.
 */
function parseNotFound(text: string): RecordedNotFound {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null) {
      const { kind, message, detail } = value as Record<string, unknown>;
      if ((kind === 'not-found' || kind === 'gone') && typeof message === 'string') {
        return { kind, message, ...(typeof detail === 'string' ? { detail } : {}) };
      }
    }
  } catch {
    // Not JSON: the bare message.
  }
  return { kind: 'not-found', message: text };
}
