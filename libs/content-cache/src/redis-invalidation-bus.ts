import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Redis } from 'ioredis';
import { errors, toModuleError } from '@modproxy/errors';
import type { ModuleVersionRef } from '@modproxy/storage';
import type { InvalidationBus, InvalidationListener } from './invalidation-bus';
import { compareStreamIds, STREAM_START } from './stream-id';

export interface RedisInvalidationBusOptions {
  /**
   * The queue Redis (`maxmemory-policy noeviction`), for publishing; not closed by the bus,
   * which reads on a duplicate of it of its own.
   */
  connection: Redis;
  /**
   * Key prefix (QUEUE_PREFIX): the stream is `<prefix>:content-cache:invalidations`, its epoch
   * `<prefix>:content-cache:epoch`.
   */
  prefix: string;
  /**
   * Where this replica keeps its place in the stream across restarts, beside a disk tier that
   * outlives the process. Without it the cache starts empty and nothing before start-up concerns
   * it. @default none
   */
  cursorFile?: string;
  /** Invalidations kept in the stream, about (older ones are trimmed). @default 10000 */
  maxEntries?: number;
  /** How long a publish waits for Redis before the purge is reported as not sent. @default 5000 */
  publishTimeoutMs?: number;
  /** How long one read blocks waiting for an invalidation. @default 5000 */
  blockMs?: number;
  /** How long start-up waits for the queue Redis before the cache starts empty. @default 2000 */
  startTimeoutMs?: number;
  /** A read or a cursor write failed (the bus goes on); must not throw. @default none */
  onError?(error: Error): void;
}

/** Fields of one stream entry: the module and version dropped. */
const MODULE_FIELD = 'module';
const VERSION_FIELD = 'version';

type StreamEntries = Array<[id: string, fields: string[]]>;
type ReadReply = Array<[key: string, entries: StreamEntries]> | null;

/**
 * Invalidations for every replica through a Redis stream on the queue Redis, rather than
 * pub/sub: a pub/sub message sent while a replica is reconnecting is lost for it, while a stream
 * entry waits. Each replica reads from its own place in the stream (an entry id, kept in
 * `cursorFile` when its disk tier outlives the process), so a replica that was away, for a
 * blip or a restart, applies what it missed when it is back. When it cannot know what it
 * missed, it drops everything (`invalidateAll`): always safe, at the price of refilling. That
 * is when its place was trimmed away (`max-deleted-entry-id` is past it), when the stream is
 * another one (the epoch key, a random id set once, changed: Redis lost its data and the
 * stream was made anew), or when it has a disk tier but no place.
 */
export class RedisInvalidationBus implements InvalidationBus {
  readonly key: string;
  private readonly epochKey: string;
  private readonly connection: Redis;
  private readonly cursorFile: string | undefined;
  private readonly maxEntries: number;
  private readonly publishTimeoutMs: number;
  private readonly blockMs: number;
  private readonly startTimeoutMs: number;
  private readonly onError: (error: Error) => void;
  private reader: Redis | undefined;
  private cursor = STREAM_START;
  private epoch: string | undefined;
  private reading: Promise<void> | undefined;
  private closed = false;
  /** Settles when the bus closes: commands waiting for a Redis that is away are given up on. */
  private readonly stopped: Promise<never>;
  private stop: (reason: Error) => void = () => undefined;
  /** Set at every (re)connection of the reader: Redis may have come back without its data. */
  private recheck = false;

  constructor(options: RedisInvalidationBusOptions) {
    this.connection = options.connection;
    this.key = `${options.prefix}:content-cache:invalidations`;
    this.epochKey = `${options.prefix}:content-cache:epoch`;
    this.cursorFile = options.cursorFile;
    this.maxEntries = options.maxEntries ?? 10_000;
    this.publishTimeoutMs = options.publishTimeoutMs ?? 5_000;
    this.blockMs = options.blockMs ?? 5_000;
    this.startTimeoutMs = options.startTimeoutMs ?? 2_000;
    this.onError = options.onError ?? (() => undefined);
    this.stopped = new Promise<never>((_resolve, reject) => {
      this.stop = reject;
    });
    this.stopped.catch(() => undefined);
  }

  async publish(ref: ModuleVersionRef): Promise<void> {
    const op = 'content-cache.publish';
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(
            errors.unavailable(op, 'the queue Redis did not take the invalidation in time', {
              ...ref,
              detail: `Redis connection ${this.connection.status}`,
            }),
          ),
        this.publishTimeoutMs,
      );
    });
    try {
      await Promise.race([
        this.connection.xadd(
          this.key,
          'MAXLEN',
          '~',
          String(this.maxEntries),
          '*',
          MODULE_FIELD,
          ref.module,
          VERSION_FIELD,
          ref.version,
        ),
        gaveUp,
      ]);
    } catch (error) {
      throw toModuleError(error, op, ref);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Finds this replica's place (dropping everything when it cannot know what it missed) and
   * applies what was published while it was away, then reads on in the background. Resolves
   * once that is done, so nothing published afterwards is missed, or after `startTimeoutMs`
   * when the queue Redis does not answer (or at once when it refuses us, a wrong password): the
   * cache is then emptied (it cannot tell what it missed) and the place is found as soon as
   * Redis is back. Start-up never waits for Redis, nor fails for it.
   */
  async subscribe(listener: InvalidationListener): Promise<void> {
    const reader = this.connection.duplicate();
    reader.on('error', () => undefined);
    reader.on('ready', () => {
      this.recheck = true;
    });
    this.reader = reader;
    const placed = this.place(reader, listener);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.startTimeoutMs);
    });
    // A place refused at once (a queue Redis that rejects our password flushes every command
    // with its error) is a start without Redis too, never a failed start: the error is
    // reported below, and the place found once Redis takes us.
    const first = await Promise.race([
      placed.then(
        () => 'placed' as const,
        () => 'refused' as const,
      ),
      late,
    ]).finally(() => clearTimeout(timer));
    if (first !== 'placed') listener.invalidateAll();
    if (first === 'late')
      this.onError(new Error('the queue Redis did not answer at start-up; the cache starts empty'));
    this.reading = placed.then(
      () => this.read(reader, listener),
      (error: unknown) => {
        if (!this.closed) this.onError(error instanceof Error ? error : new Error(String(error)));
        return this.read(reader, listener);
      },
    );
  }

  /** Settles this replica's place in the stream and applies what came after it. */
  private async place(reader: Redis, listener: InvalidationListener): Promise<void> {
    const saved = this.cursorFile ? await readCursor(this.cursorFile) : undefined;
    if (saved) {
      this.epoch = saved.epoch;
      this.cursor = saved.cursor;
      await this.checkGap(reader, listener);
    } else {
      // With a disk tier, what it holds comes from a run we know nothing of.
      if (this.cursorFile) listener.invalidateAll();
      this.epoch = await this.currentEpoch(reader);
      this.cursor = (await this.command(streamInfo(reader, this.key)))?.lastGeneratedId ?? STREAM_START;
    }
    await this.saveCursor();
    this.recheck = false;
    while ((await this.readOnce(reader, listener, undefined)) > 0);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stop(new Error('the invalidation bus is closed'));
    // ioredis leaves the commands of a connection that is reconnecting unsettled on disconnect.
    this.reader?.disconnect();
    await this.reading;
  }

  private async read(reader: Redis, listener: InvalidationListener): Promise<void> {
    while (!this.closed) {
      try {
        if (this.recheck) {
          this.recheck = false;
          await this.checkGap(reader, listener);
        }
        await this.readOnce(reader, listener, this.blockMs);
      } catch (error) {
        if (this.closed) return;
        this.onError(error instanceof Error ? error : new Error(String(error)));
        // Commands wait for a reconnection on their own; this only keeps a persistent error from
        // spinning. A Redis that refuses every connection (a wrong password) fails each command
        // at each attempt: the next read waits for a connection that works, so the outage is
        // reported once, not every second.
        const pause = new Promise((resolve) => setTimeout(resolve, 1_000));
        const connected =
          reader.status === 'ready'
            ? pause
            : Promise.all([pause, new Promise((resolve) => reader.once('ready', resolve))]);
        await Promise.race([connected, this.stopped]).catch(() => undefined);
      }
    }
  }

  /** Applies the entries after our place (waiting up to `blockMs` for one); returns how many. */
  private async readOnce(
    reader: Redis,
    listener: InvalidationListener,
    blockMs: number | undefined,
  ): Promise<number> {
    const block = blockMs === undefined ? [] : ['BLOCK', blockMs];
    const reply = (await this.command(
      reader.xread('COUNT', 1000, ...(block as ['BLOCK', number]), 'STREAMS', this.key, this.cursor),
    )) as ReadReply;
    const entries = reply?.[0]?.[1] ?? [];
    for (const [id, fields] of entries) {
      const ref = refOf(fields);
      if (ref) listener.invalidate(ref);
      this.cursor = id;
    }
    if (entries.length > 0) await this.saveCursor();
    return entries.length;
  }

  /** A reader command, given up on when the bus closes. */
  private command<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([promise, this.stopped]);
  }

  /**
   * Entries after our place that are gone (trimmed, or a stream made anew after Redis lost its
   * data) were missed: everything is dropped, and reading goes on from what is there.
   */
  private async checkGap(reader: Redis, listener: InvalidationListener): Promise<void> {
    const epoch = await this.currentEpoch(reader);
    if (epoch !== this.epoch) {
      listener.invalidateAll();
      this.epoch = epoch;
      this.cursor = STREAM_START;
      await this.saveCursor();
      return;
    }
    const info = await this.command(streamInfo(reader, this.key));
    if (missedSome(info, this.cursor)) {
      listener.invalidateAll();
      if (info === undefined) this.cursor = STREAM_START;
      await this.saveCursor();
    }
  }

  /** The stream's epoch, made by whoever asks first after Redis started without it. */
  private async currentEpoch(reader: Redis): Promise<string> {
    await this.command(reader.set(this.epochKey, randomUUID(), 'NX'));
    return (await this.command(reader.get(this.epochKey))) ?? '';
  }

  private async saveCursor(): Promise<void> {
    if (!this.cursorFile) return;
    try {
      await mkdir(dirname(this.cursorFile), { recursive: true });
      const temp = `${this.cursorFile}.${process.pid}.tmp`;
      await writeFile(temp, `${this.epoch ?? ''} ${this.cursor}\n`);
      await rename(temp, this.cursorFile);
    } catch (error) {
      this.onError(error instanceof Error ? error : new Error(String(error)));
    }
  }
}

function refOf(fields: string[]): ModuleVersionRef | undefined {
  let module: string | undefined;
  let version: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === MODULE_FIELD) module = fields[i + 1];
    if (fields[i] === VERSION_FIELD) version = fields[i + 1];
  }
  return module !== undefined && version !== undefined ? { module, version } : undefined;
}

/** The epoch and place a previous run saved, when the file holds them. */
async function readCursor(file: string): Promise<{ epoch: string; cursor: string } | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  const [epoch = '', cursor = ''] = (text ?? '').trim().split(' ');
  if (epoch === '' || compareStreamIds(cursor, STREAM_START) === undefined) return undefined;
  return { epoch, cursor };
}

interface StreamInfo {
  length: number;
  lastGeneratedId: string;
  /** The oldest entry still there (absent when the stream is empty). */
  firstEntryId: string | undefined;
  /** Entries ever added, trimmed and deleted ones included. */
  entriesAdded: number;
}

/**
 * Whether entries after `cursor` are gone. From the start, anything ever removed was missed.
 * From an entry we read, the oldest entry left being newer than it means it was trimmed, and
 * perhaps others after it (one refill too many when it was exactly that one). An empty stream
 * that was added to since our place lost everything after it. No stream in an epoch we have read
 * from was removed, with whatever was in it.
 */
function missedSome(info: StreamInfo | undefined, cursor: string): boolean {
  if (info === undefined) return cursor !== STREAM_START;
  if (cursor === STREAM_START) return info.entriesAdded > info.length;
  const after = (id: string | undefined) => id !== undefined && (compareStreamIds(id, cursor) ?? 0) > 0;
  if (info.length === 0) return after(info.lastGeneratedId);
  return after(info.firstEntryId);
}

/** XINFO STREAM's ids, or undefined when the stream does not exist. */
async function streamInfo(redis: Redis, key: string): Promise<StreamInfo | undefined> {
  let reply: unknown[];
  try {
    reply = (await redis.xinfo('STREAM', key)) as unknown[];
  } catch (error) {
    if (error instanceof Error && /no such key/i.test(error.message)) return undefined;
    throw error;
  }
  const fields = new Map<string, unknown>();
  for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), reply[i + 1]);
  const first = fields.get('first-entry');
  return {
    length: Number(fields.get('length') ?? 0),
    lastGeneratedId: String(fields.get('last-generated-id') ?? STREAM_START),
    firstEntryId: Array.isArray(first) && typeof first[0] === 'string' ? first[0] : undefined,
    entriesAdded: Number(fields.get('entries-added') ?? 0),
  };
}
