import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { open, readFile, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';

export interface DiskTierLockOptions {
  /** How often the lock's modification time is renewed. @default 10000 */
  renewMs?: number;
  /** A lock not renewed for this long belongs to a process that is gone. @default 30000 */
  expiryMs?: number;
}

interface Owner {
  host: string;
  pid: number;
  id: string;
}

/**
 * One process per disk tier directory: `<dir>/owner` names the process that uses it (host, pid
 * and a random id) and is renewed while it does. Another process finds it held and goes
 * without a disk tier rather than sharing one (two indexes over one directory would evict each
 * other's files and remove each other's fills). The lock is taken over when its owner is gone:
 * on this host a pid that is not alive, or our own pid (a container restarted: pid 1 again,
 * same host name); otherwise, a lock not renewed for `expiryMs` (another host, a shared volume).
 */
export class DiskTierLock {
  private readonly path: string;
  private readonly owner: Owner = { host: hostname(), pid: process.pid, id: randomUUID() };
  private timer: NodeJS.Timeout | undefined;

  private constructor(dir: string) {
    this.path = join(dir, 'owner');
  }

  /** The lock, or the owner that holds it. */
  static async acquire(
    dir: string,
    options: DiskTierLockOptions = {},
  ): Promise<{ lock: DiskTierLock } | { heldBy: string }> {
    const lock = new DiskTierLock(dir);
    const expiryMs = options.expiryMs ?? 30_000;
    for (let attempt = 0; attempt < 2; attempt++) {
      if (await lock.create()) {
        lock.timer = setInterval(() => void lock.renew(), options.renewMs ?? 10_000);
        lock.timer.unref();
        return { lock };
      }
      const holder = await lock.holder(expiryMs);
      if (holder !== undefined) return { heldBy: holder };
      // Gone: whoever creates the file next has it.
      await unlink(lock.path).catch(() => undefined);
    }
    return { heldBy: 'another process taking it over at the same time' };
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    if ((await this.read())?.id === this.owner.id) await unlink(this.path).catch(() => undefined);
  }

  private async create(): Promise<boolean> {
    try {
      const handle = await open(this.path, 'wx');
      await handle.writeFile(`${JSON.stringify(this.owner)}\n`);
      await handle.close();
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
  }

  /** Who holds the lock, or undefined when its owner is gone. */
  private async holder(expiryMs: number): Promise<string | undefined> {
    const [owner, stats] = await Promise.all([this.read(), stat(this.path).catch(() => undefined)]);
    if (!stats) return undefined;
    const renewedMsAgo = Date.now() - stats.mtimeMs;
    if (owner && owner.host === this.owner.host) {
      if (owner.pid === this.owner.pid || !alive(owner.pid)) return undefined;
      return `process ${owner.pid} on this host`;
    }
    if (renewedMsAgo > expiryMs) return undefined;
    return owner ? `process ${owner.pid} on ${owner.host}` : 'a process whose lock cannot be read';
  }

  private async renew(): Promise<void> {
    const now = new Date();
    await utimes(this.path, now, now).catch(() => undefined);
  }

  private async read(): Promise<Owner | undefined> {
    try {
      const parsed = JSON.parse(await readFile(this.path, 'utf8')) as Partial<Owner>;
      if (
        typeof parsed.host !== 'string' ||
        typeof parsed.pid !== 'number' ||
        typeof parsed.id !== 'string'
      ) {
        return undefined;
      }
      return { host: parsed.host, pid: parsed.pid, id: parsed.id };
    } catch {
      return undefined;
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it is someone else's.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
