import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { escapePath } from '@modproxy/gomod';
import type { ModuleStorage } from '@modproxy/storage';
import { createTempDir, removeDir, startStaticGoproxy, type StaticGoproxy } from '@modproxy/testing';

export function infoJson(version: string, time = '2024-01-02T03:04:05Z'): string {
  return `{"Version":"${version}","Time":"${time}"}`;
}

/**
 * A test upstream: a StaticGoproxy on 127.0.0.1 whose list and latest answers the test
 * rewrites, and which counts the requests it gets.
 */
export class GoproxyFixture {
  private constructor(
    readonly dir: string,
    readonly proxy: StaticGoproxy,
  ) {}

  static async start(): Promise<GoproxyFixture> {
    const dir = await createTempDir('versions-upstream-');
    return new GoproxyFixture(dir, await startStaticGoproxy(dir, { slowDelayMs: 200 }));
  }

  get url(): string {
    return this.proxy.url;
  }

  /** Upstream now lists these versions, and answers @latest with the last one. */
  async publish(module: string, versions: readonly string[], latest = versions.at(-1)): Promise<void> {
    const base = join(this.dir, escapePath(module));
    await mkdir(join(base, '@v'), { recursive: true });
    await writeFile(join(base, '@v', 'list'), versions.map((version) => `${version}\n`).join(''));
    if (latest) await writeFile(join(base, '@latest'), infoJson(latest));
  }

  /** Upstream no longer knows the module. */
  async unpublish(module: string): Promise<void> {
    await rm(join(this.dir, escapePath(module)), { recursive: true, force: true });
  }

  listCalls(module: string): number {
    return this.proxy.requestCount(`/${escapePath(module)}/@v/list`);
  }

  latestCalls(module: string): number {
    return this.proxy.requestCount(`/${escapePath(module)}/@latest`);
  }

  async stop(): Promise<void> {
    await this.proxy.stop();
    await removeDir(this.dir);
  }
}

/** Stores a version (with placeholder go.mod and zip: only list and info matter here). */
export async function storeVersion(storage: ModuleStorage, module: string, version: string): Promise<void> {
  await storage.save({
    module,
    version,
    info: Buffer.from(infoJson(version)),
    mod: Buffer.from(`module ${module}\n`),
    zip: Readable.from([Buffer.from('not really a zip')]),
  });
}

// Not exported: tests wait for conditions (eventually, waitUntil) or move a ManualClock.
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` returns true or `timeoutMs` (a deadline for a busy machine) passes. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(10);
  }
  return check();
}
