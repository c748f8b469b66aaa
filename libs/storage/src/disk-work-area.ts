import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { mkdir, mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface DiskWorkAreaOptions {
  /** How often the lease is renewed and dead owners' work is swept. @default 10000 */
  leaseRenewMs?: number;
  /**
   * A lease not renewed for this long belongs to a dead process. It must exceed `leaseRenewMs`
   * plus the longest an NFS client may cache a file's attributes (`acregmax`, 60 s by default).
   * @default 120000
   */
  leaseExpiryMs?: number;
}

/** Where work entries live; a module path element never starts with a dot, so no module can clash. */
export const WORK_DIR = '.tmp';
/** One lease file per open storage, named by its owner. */
export const LEASE_DIR = '.leases';
const OWNER = /^([a-z0-9.-]{1,64})_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
const OWNER_SEPARATOR = '+';

/**
 * The work area of a disk storage root that any number of processes, on any number of hosts,
 * may share (an NFS volume mounted by every replica).
 *
 * Each open storage is an owner with an identity unique across hosts (host name plus a random
 * UUID: pids repeat, pid 1 is in every container) and a lease, `<root>/.leases/<owner>`,
 * rewritten every `leaseRenewMs`. Work entries are `<root>/.tmp/<owner>+<kind>-<random>`. An
 * entry whose owner's lease is missing or older than `leaseExpiryMs` belongs to a dead process
 * and is removed when any owner sweeps (at open, then on every renewal).
 *
 * Ages are measured with the file server's clock only: "now" is the modification time of our
 * own lease just after rewriting it, so clock skew between hosts does not matter. Node has no
 * advisory file locks, and NFS locks outlive a crashed client until its lock lease expires
 * anyway; a lease file needs nothing but rename-free writes and stat.
 */
export class DiskWorkArea {
  readonly owner: string;
  private readonly leasePath: string;
  private readonly renewMs: number;
  private readonly expiryMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly root: string,
    options: DiskWorkAreaOptions,
  ) {
    this.owner = `${hostLabel()}_${randomUUID()}`;
    this.leasePath = join(root, LEASE_DIR, this.owner);
    this.renewMs = options.leaseRenewMs ?? 10_000;
    this.expiryMs = options.leaseExpiryMs ?? 120_000;
    if (!(this.renewMs > 0 && this.expiryMs > this.renewMs)) {
      throw new RangeError('leaseExpiryMs must be longer than leaseRenewMs, and both positive');
    }
  }

  /** Takes a lease on `root`'s work area, removes what dead owners left, and keeps the lease renewed. */
  static async open(root: string, options: DiskWorkAreaOptions = {}): Promise<DiskWorkArea> {
    const area = new DiskWorkArea(root, options);
    await mkdir(join(root, WORK_DIR), { recursive: true });
    // The lease exists before any of our work does, so a sweeper never sees our work without it.
    await area.sweep();
    area.timer = setInterval(() => area.tick(), area.renewMs);
    area.timer.unref();
    return area;
  }

  get dir(): string {
    return join(this.root, WORK_DIR);
  }

  /** A fresh directory for one piece of work, e.g. `save`. */
  async makeDir(kind: string): Promise<string> {
    const prefix = join(this.dir, `${this.owner}${OWNER_SEPARATOR}${kind}-`);
    try {
      return await mkdtemp(prefix);
    } catch (error) {
      // Someone removed the work area by hand while we were running; it is ours to recreate.
      if (errnoCode(error) !== 'ENOENT') throw error;
      await this.renew();
      await mkdir(this.dir, { recursive: true });
      return mkdtemp(prefix);
    }
  }

  /** A path in the work area to move something out of sight to (nothing is created). */
  async reservePath(kind: string): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    return join(this.dir, `${this.owner}${OWNER_SEPARATOR}${kind}-${randomUUID()}`);
  }

  /**
   * Renews our lease, then removes every work entry whose owner is dead, and the dead owners'
   * leases. Entries of live owners (other processes, or other storages in this process) stay.
   */
  async sweep(): Promise<void> {
    const now = await this.renew();
    const leases = join(this.root, LEASE_DIR);
    for (const name of await namesIn(this.dir)) {
      const owner = ownerOf(name);
      if (owner === this.owner) continue;
      if (owner !== undefined && (await this.isLive(join(leases, owner), now))) continue;
      await rm(join(this.dir, name), { recursive: true, force: true }).catch(() => undefined);
    }
    for (const owner of await namesIn(leases)) {
      if (owner === this.owner || (await this.isLive(join(leases, owner), now))) continue;
      await rm(join(leases, owner), { force: true }).catch(() => undefined);
    }
  }

  /** Stops renewing, removes our own leftovers and our lease. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.running;
    const mine = `${this.owner}${OWNER_SEPARATOR}`;
    const names = await readdir(this.dir).catch(() => []);
    for (const name of names) {
      if (name.startsWith(mine)) await rm(join(this.dir, name), { recursive: true, force: true });
    }
    await rm(this.leasePath, { force: true });
  }

  private tick(): void {
    if (this.running || this.closed) return;
    // Best effort: a failed renewal is retried on the next tick, well within the expiry.
    this.running = this.sweep()
      .catch(() => undefined)
      .finally(() => {
        this.running = undefined;
      });
  }

  /**
   * Rewrites our lease in place and returns its new modification time: the file server's "now".
   * In place (no truncation, same length), so a reader never sees it empty.
   */
  private async renew(): Promise<number> {
    const body = `${JSON.stringify({ host: hostname(), pid: process.pid, renewed: new Date().toISOString() })}\n`;
    let handle;
    try {
      handle = await open(this.leasePath, 'r+');
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
      await mkdir(join(this.root, LEASE_DIR), { recursive: true });
      handle = await open(this.leasePath, 'w');
    }
    try {
      await handle.write(body, 0);
      await handle.truncate(Buffer.byteLength(body));
      return (await handle.stat()).mtimeMs;
    } finally {
      await handle.close();
    }
  }

  private async isLive(leasePath: string, now: number): Promise<boolean> {
    try {
      return now - (await stat(leasePath)).mtimeMs <= this.expiryMs;
    } catch (error) {
      // What we cannot judge, we keep.
      return errnoCode(error) !== 'ENOENT';
    }
  }
}

/** The entries of `dir`; none when someone removed it by hand (it is made again when needed). */
async function namesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
}

/** The owner a work entry's name carries, when it is a name this class makes. */
function ownerOf(name: string): string | undefined {
  const at = name.indexOf(OWNER_SEPARATOR);
  if (at < 0) return undefined;
  const owner = name.slice(0, at);
  return OWNER.test(owner) ? owner : undefined;
}

/** The host name as a file name part: lower case, letters, digits, dots and dashes only. */
function hostLabel(): string {
  const label = hostname()
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .slice(0, 64);
  return label === '' ? 'host' : label;
}

export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const { code } = error as { code: unknown };
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
