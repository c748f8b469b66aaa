import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import {
  describeStorageCompliance,
  failingStream,
  patternBuffer,
  readAll,
  sha256Hex,
  stalledStream,
} from './compliance';
import { DiskStorage } from './disk-storage';
import type { SaveInput } from './module-storage';

describeStorageCompliance('disk', async () => {
  const root = await mkdtemp(join(tmpdir(), 'modproxy-disk-storage-'));
  const storage = await DiskStorage.open({ root });
  return {
    storage,
    cleanup: async () => {
      await storage.close();
      await rm(root, { recursive: true, force: true });
    },
  };
});

/** Every path below `dir`, relative to it, directories marked with a trailing slash. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const path = relative(dir, join(entry.parentPath, entry.name));
    out.push(entry.isDirectory() ? `${path}/` : path);
  }
  return out.sort();
}

function input(module: string, version: string, zip: Buffer = patternBuffer(4096, 1)): SaveInput {
  return {
    module,
    version,
    info: Buffer.from(`{"Version":"${version}"}`),
    mod: Buffer.from(`module ${module}\n`),
    zip: Readable.from([zip], { objectMode: false }),
  };
}

async function kindOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return isModuleError(error) ? error.kind : error;
  }
}

describe('DiskStorage', () => {
  let sandbox: string;
  let root: string;

  beforeEach(async () => {
    sandbox = await mkdtemp(join(tmpdir(), 'modproxy-disk-sandbox-'));
    root = join(sandbox, 'root');
  });

  afterEach(async () => {
    await rm(sandbox, { recursive: true, force: true });
  });

  it('lays versions out as <root>/<escaped module>/@v/<escaped version>/{info,mod,zip}', async () => {
    const storage = await DiskStorage.open({ root });
    const zip = patternBuffer(10_000, 3);
    await storage.save(input('github.com/Azure/Go', 'v1.0.0-RC1', zip));
    const dir = join(root, 'github.com', '!azure', '!go', '@v', 'v1.0.0-!r!c1');
    expect((await readdir(dir)).sort()).toEqual(['info', 'mod', 'zip']);
    expect(await readFile(join(dir, 'zip'))).toEqual(zip);
    expect(await readFile(join(dir, 'mod'), 'utf8')).toBe('module github.com/Azure/Go\n');
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
    await storage.close();
  });

  it('keeps what it stored across a reopen', async () => {
    const first = await DiskStorage.open({ root });
    await first.save(input('example.com/persist', 'v1.0.0'));
    await first.close();
    const second = await DiskStorage.open({ root });
    expect(await second.list('example.com/persist')).toEqual(['v1.0.0']);
    expect(await readAll((await second.zip('example.com/persist', 'v1.0.0')).stream)).toEqual(
      patternBuffer(4096, 1),
    );
    await second.close();
  });

  it('rejects path traversal in module paths and versions without touching the file system', async () => {
    const storage = await DiskStorage.open({ root });
    await storage.save(input('example.com/ok', 'v1.0.0'));
    const before = await tree(sandbox);
    const modules = [
      '../x',
      'a/../../b',
      'example.com/../../escape',
      'example.com/a/../../../escape',
      '/etc/passwd',
      `${sandbox}/outside`,
      'example.com/%2e%2e/%2e%2e/escape',
      'example.com/%2E%2E',
      'example.com/!x',
      'example.com/!..',
      'example.com/x\0y',
      'example.com/..%2fescape',
      '..',
      'example.com/.tmp',
      'example.com\\..\\..\\escape',
      // Valid by the Go rules, but no file system holds an element this long.
      `example.com/${'a'.repeat(256)}`,
    ];
    const versions = [
      '../../../../escape',
      'v1.0.0/../../../escape',
      '%2e%2e',
      '!v1.0.0',
      'v1.0.0\0',
      '..',
      '.tmp',
      '/v1.0.0',
      `v1.0.0-${'a'.repeat(250)}`,
    ];
    const attempts: [string, string][] = [
      ...modules.map((m): [string, string] => [m, 'v1.0.0']),
      ...versions.map((v): [string, string] => ['example.com/ok', v]),
    ];
    for (const [module, version] of attempts) {
      const at = JSON.stringify(`${module}@${version}`);
      expect(await kindOf(storage.save(input(module, version))), `save ${at}`).toBe('invalid-argument');
      expect(await kindOf(storage.exists(module, version)), `exists ${at}`).toBe('invalid-argument');
      expect(await kindOf(storage.info(module, version)), `info ${at}`).toBe('invalid-argument');
      expect(await kindOf(storage.zip(module, version)), `zip ${at}`).toBe('invalid-argument');
      expect(await kindOf(storage.delete(module, version)), `delete ${at}`).toBe('invalid-argument');
    }
    for (const module of modules) {
      expect(await kindOf(storage.list(module)), `list ${JSON.stringify(module)}`).toBe('invalid-argument');
    }
    expect(await tree(sandbox)).toEqual(before);
    await storage.close();
  });

  it('removes work of dead owners on open and keeps that of live ones, whatever their pid', async () => {
    const tmp = join(root, '.tmp');
    const leases = join(root, '.leases');
    await mkdir(join(tmp, 'junk', 'nested'), { recursive: true });
    await writeFile(join(tmp, 'junk', 'nested', 'zip'), 'partial');
    // The pid-named work directories of earlier versions, ours and a stranger's.
    await mkdir(join(tmp, '999999999-1-save-abcdef'));
    await writeFile(join(tmp, '999999999-1-save-abcdef', 'info'), '{}');
    await mkdir(join(tmp, `${process.pid}-1-save-abcdef`));
    await writeFile(join(tmp, 'stray-file'), 'x');
    await mkdir(leases);
    // Another container on another host, pid 1 like every container: alive, its lease fresh.
    const live = `pod-b_${randomUUID()}`;
    await writeFile(join(leases, live), JSON.stringify({ host: 'pod-b', pid: 1 }));
    await mkdir(join(tmp, `${live}+save-AbC123`));
    await writeFile(join(tmp, `${live}+save-AbC123`, 'zip'), 'mid-save');
    // A crashed one, also pid 1: its lease was last renewed an hour ago.
    const dead = `pod-a_${randomUUID()}`;
    await writeFile(join(leases, dead), JSON.stringify({ host: 'pod-a', pid: 1 }));
    const anHourAgo = new Date(Date.now() - 3_600_000);
    await utimes(join(leases, dead), anHourAgo, anHourAgo);
    await mkdir(join(tmp, `${dead}+save-XyZ789`));
    // An owner without any lease.
    await mkdir(join(tmp, `pod-c_${randomUUID()}+delete-1`));

    const storage = await DiskStorage.open({ root });
    expect(await readdir(tmp)).toEqual([`${live}+save-AbC123`]);
    expect(await readFile(join(tmp, `${live}+save-AbC123`, 'zip'), 'utf8')).toBe('mid-save');
    const leaseNames = await readdir(leases);
    expect(leaseNames).toHaveLength(2);
    expect(leaseNames).toContain(live);
    expect(leaseNames).not.toContain(dead);
    expect(await storage.catalog({ pageSize: 10 })).toEqual({ entries: [] });
    await storage.close();
    expect(await readdir(leases)).toEqual([live]);
  });

  it('keeps renewing its lease and sweeps the work of owners that die while it runs', async () => {
    const storage = await DiskStorage.open({ root, leaseRenewMs: 20, leaseExpiryMs: 60_000 });
    const leases = join(root, '.leases');
    const [own] = await readdir(leases);
    const ownLease = join(leases, own ?? '');
    const aged = new Date(Date.now() - 3_600_000);
    /** Ages our lease and waits until a tick renews it: proof that a tick ran after this call. */
    const renewal = async () => {
      await utimes(ownLease, aged, aged);
      await expect.poll(async () => (await stat(ownLease)).mtimeMs > aged.getTime() + 1_000).toBe(true);
    };
    await renewal();

    const other = `pod-d_${randomUUID()}`;
    await writeFile(join(leases, other), '{}');
    await mkdir(join(root, '.tmp', `${other}+save-1`));
    // Alive: whole sweeps (ticks never overlap, so the second renewal follows a complete
    // sweep) leave it alone; once its lease is old, a sweep removes its work.
    await renewal();
    await renewal();
    expect(await readdir(join(root, '.tmp'))).toEqual([`${other}+save-1`]);
    await utimes(join(leases, other), aged, aged);
    await expect.poll(async () => readdir(join(root, '.tmp'))).toEqual([]);
    await expect.poll(async () => (await readdir(leases)).includes(other)).toBe(false);
    await storage.close();
    expect(await readdir(leases)).toEqual([]);
  });

  it('recreates its work area and lease when someone removes them by hand while it runs', async () => {
    const storage = await DiskStorage.open({ root, leaseRenewMs: 20 });
    await rm(join(root, '.tmp'), { recursive: true, force: true });
    await rm(join(root, '.leases'), { recursive: true, force: true });
    await storage.save(input('example.com/handmade', 'v1.0.0'));
    expect(await storage.list('example.com/handmade')).toEqual(['v1.0.0']);
    await expect.poll(async () => (await readdir(join(root, '.leases'))).length).toBe(1);
    await storage.close();
    expect(await readdir(join(root, '.leases'))).toEqual([]);
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
  });

  it('does not disturb a save in flight when another storage opens the same root', async () => {
    const first = await DiskStorage.open({ root });
    const zip = new PassThrough();
    const head = patternBuffer(100_000, 8);
    const tail = patternBuffer(50_000, 9);
    const saving = first.save({ ...input('example.com/inflight', 'v1.0.0'), zip });
    zip.write(head);
    await expect.poll(async () => (await readdir(join(root, '.tmp'))).length).toBe(1);
    const second = await DiskStorage.open({ root });
    zip.end(tail);
    await saving;
    expect(await readAll((await second.zip('example.com/inflight', 'v1.0.0')).stream)).toEqual(
      Buffer.concat([head, tail]),
    );
    await first.close();
    await second.close();
  });

  it('treats version directories missing a file, or not named as it would name them, as absent', async () => {
    const versions = join(root, 'example.com', 'half', '@v');
    await mkdir(join(versions, 'v1.0.0'), { recursive: true });
    await writeFile(join(versions, 'v1.0.0', 'info'), '{}');
    await mkdir(join(versions, 'v1.1.0'), { recursive: true });
    await writeFile(join(versions, 'v1.1.0', 'info'), '{}');
    await writeFile(join(versions, 'v1.1.0', 'mod'), 'module example.com/half\n');
    await mkdir(join(versions, 'v1.2.0', 'zip'), { recursive: true });
    await writeFile(join(versions, 'v1.2.0', 'info'), '{}');
    await writeFile(join(versions, 'v1.2.0', 'mod'), 'module example.com/half\n');
    for (const stray of ['V1.3.0', 'latest', 'v1.3']) {
      await mkdir(join(versions, stray), { recursive: true });
      for (const part of ['info', 'mod', 'zip']) await writeFile(join(versions, stray, part), 'x');
    }
    const upper = join(root, 'Example.com', 'x', '@v', 'v1.0.0');
    await mkdir(upper, { recursive: true });
    for (const part of ['info', 'mod', 'zip']) await writeFile(join(upper, part), 'x');

    const storage = await DiskStorage.open({ root });
    for (const version of ['v1.0.0', 'v1.1.0', 'v1.2.0']) {
      expect(await storage.exists('example.com/half', version)).toBe(false);
      expect(await kindOf(storage.info('example.com/half', version))).toBe('not-found');
      expect(await kindOf(storage.mod('example.com/half', version))).toBe('not-found');
      expect(await kindOf(storage.zip('example.com/half', version))).toBe('not-found');
    }
    expect(await storage.list('example.com/half')).toEqual([]);
    expect(await storage.catalog({ pageSize: 100 })).toEqual({ entries: [] });

    // A broken leftover does not block saving the version properly.
    for (const version of ['v1.0.0', 'v1.1.0', 'v1.2.0']) {
      await storage.save(input('example.com/half', version, patternBuffer(2000, 5)));
      expect(await readAll((await storage.zip('example.com/half', version)).stream)).toEqual(
        patternBuffer(2000, 5),
      );
    }
    expect(await storage.list('example.com/half')).toEqual(['v1.0.0', 'v1.1.0', 'v1.2.0']);
    await storage.close();
  });

  it('leaves no work files behind after failed or aborted saves', async () => {
    const storage = await DiskStorage.open({ root });
    const wrongSum = sha256Hex(Buffer.from('something else'));
    expect(await kindOf(storage.save({ ...input('example.com/fail', 'v1.0.0'), zipSha256: wrongSum }))).toBe(
      'invalid-argument',
    );
    expect(
      await kindOf(storage.save({ ...input('example.com/fail', 'v1.0.0'), zip: failingStream(200_000, 2) })),
    ).not.toBe('resolved');
    const controller = new AbortController();
    const { stream, waitingForMore } = stalledStream(64 * 1024, 4);
    const aborted = storage.save(
      { ...input('example.com/fail', 'v1.0.0'), zip: stream },
      { signal: controller.signal },
    );
    await waitingForMore;
    controller.abort();
    expect(await kindOf(aborted)).toBe('cancelled');
    await storage.save(input('example.com/fail', 'v1.0.0'));
    expect(await kindOf(storage.save(input('example.com/fail', 'v1.0.0')))).toBe('already-exists');
    await storage.delete('example.com/fail', 'v1.0.0');
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
    expect(await tree(join(root, 'example.com'))).toEqual(['fail/', 'fail/@v/']);
    await storage.close();
  });

  it('lets exactly one of two storages on the same root win a concurrent save', async () => {
    const a = await DiskStorage.open({ root });
    const b = await DiskStorage.open({ root });
    const contenders = Array.from({ length: 6 }, (_, i) => patternBuffer(300_000, 100 + i));
    const results = await Promise.allSettled(
      contenders.map((zip, i) => (i % 2 === 0 ? a : b).save(input('example.com/two', 'v1.0.0', zip))),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(won).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect(isModuleError(r.reason, 'already-exists')).toBe(true);
    }
    const stored = await readAll((await b.zip('example.com/two', 'v1.0.0')).stream);
    expect(stored.equals(contenders[won[0] ?? -1] ?? Buffer.alloc(0))).toBe(true);
    await a.close();
    await b.close();
  });

  it('keeps an opened zip readable when the version is deleted meanwhile', async () => {
    const storage = await DiskStorage.open({ root });
    const bytes = patternBuffer(500_000, 12);
    await storage.save(input('example.com/open', 'v1.0.0', bytes));
    const zip = await storage.zip('example.com/open', 'v1.0.0');
    await storage.delete('example.com/open', 'v1.0.0');
    expect(await storage.exists('example.com/open', 'v1.0.0')).toBe(false);
    expect(zip.size).toBe(bytes.length);
    expect((await readAll(zip.stream)).equals(bytes)).toBe(true);
    await storage.close();
  });
});
