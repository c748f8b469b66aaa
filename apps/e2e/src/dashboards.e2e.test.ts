import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Response as BrowserResponse } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createQueueRedis, HostLimitTable, HostPoliteness } from '@modproxy/queue';
import {
  buildZip,
  CountingUpstream,
  type CountingAnswer,
  createTempDir,
  removeDir,
  startAppProcess,
  waitUntil,
  type AppProcess,
} from '@modproxy/testing';
import { openBrowserSession } from './headless-chromium';
import { startStorageProcess } from './storage-process';

const root = join(__dirname, '..', '..', '..');
const main = (app: string) => join(root, 'dist', 'apps', app, 'main.js');

const PASSWORD = 'dashboards-password-7';
const TOKEN = 'dashboards-token-0123456789';
const GOOD = 'dash.example/good';
const MISSING = 'dash.example/missing';
const THROTTLED = 'dash.example/throttled';
const TIME = '2024-01-02T03:04:05Z';

/**
 * Both dashboards in headless Chromium, over real traffic through the production shape: the
 * storage service, crathens' workers on the queue Redis, and a proxy replica handing its misses
 * to the queue, all fetching from one counting upstream proxy.
 */
describe('the dashboards in a browser (Bull Board on crathens, the proxy’s status page)', () => {
  let dir: string;
  let upstream: CountingUpstream;
  const started: AppProcess[] = [];
  let proxyUrl: string;
  let proxyAdmin: string;
  let crathensAdmin: string;

  beforeAll(async () => {
    dir = await createTempDir('dashboards-e2e-');
    const zip = await buildZip([
      { name: `${GOOD}@v1.0.0/go.mod`, data: `module ${GOOD}\n` },
      { name: `${GOOD}@v1.0.0/good.go`, data: 'package good\n' },
    ]);
    upstream = await CountingUpstream.start({
      answer: (path): CountingAnswer => {
        if (path.startsWith(`/${THROTTLED}/`))
          return { status: 429, headers: { 'retry-after': '600' }, body: 'slow down' };
        if (path === `/${GOOD}/@v/v1.0.0.info`)
          return { status: 200, body: JSON.stringify({ Version: 'v1.0.0', Time: TIME }) };
        if (path === `/${GOOD}/@v/v1.0.0.mod`) return { status: 200, body: `module ${GOOD}\n` };
        if (path === `/${GOOD}/@v/v1.0.0.zip`)
          return { status: 200, headers: { 'content-type': 'application/zip' }, body: zip };
        return { status: 404, body: 'not found' };
      },
    });
    const token = randomBytes(24).toString('hex');
    const prefix = `dash${randomBytes(4).toString('hex')}`;
    const base = { PATH: process.env['PATH'] ?? '', HOME: dir, LOG_LEVEL: 'warn' };
    const storage = await startStorageProcess({
      env: { ...base },
      token,
      backend: { dir: join(dir, 'storage') },
    });
    started.push(storage);
    const shared = {
      QUEUE_REDIS_URL: inject('redisUrl'),
      QUEUE_PREFIX: prefix,
      STORAGE_GRPC_URL: `127.0.0.1:${storage.match[1] ?? ''}`,
      STORAGE_TOKEN: token,
      UPSTREAM: upstream.url,
      ADMIN_PORT: '0',
      ADMIN_PASSWORD: PASSWORD,
    };
    const crathens = await startAppProcess(main('crathens'), {
      env: {
        ...base,
        ...shared,
        HOST_RATE_PER_SECOND: '0',
        CRAWL_INTERVAL_MS: '86400000',
        RECENT_CRAWL_INTERVAL_MS: '86400000',
      },
      ready: /crathens running: admin (\S+)/,
    });
    started.push(crathens);
    crathensAdmin = crathens.match[1] ?? '';
    const proxy = await startAppProcess(main('proxy'), {
      // The admin port's address is in an info line, which may come before or after the banner.
      env: { ...base, ...shared, LOG_LEVEL: 'info', STORAGE_TYPE: 'grpc', PORT: '0', ADMIN_TOKEN: TOKEN },
      ready: /^(?=[\s\S]*"admin":"(http:\/\/127\.0\.0\.1:\d+)")(?=[\s\S]*export GOPROXY=(\S+))/,
    });
    started.push(proxy);
    proxyAdmin = proxy.match[1] ?? '';
    proxyUrl = proxy.match[2] ?? '';

    // Real traffic: a version fetched through the queue, one that does not exist upstream, and
    // one whose host answers 429 with Retry-After, which cools the host down. The missing one's
    // zip is asked for: a cold .info is answered by upstream's .info alone (early answers), so a
    // 404 there queues nothing, while a zip always goes through the queue.
    expect((await fetch(`${proxyUrl}/${GOOD}/@v/v1.0.0.info`)).status).toBe(200);
    const missing = await fetch(`${proxyUrl}/${MISSING}/@v/v1.9.9.zip`);
    expect(missing.status).toBe(404);
    const redis = createQueueRedis(inject('redisUrl'));
    const politeness = new HostPoliteness({
      redis,
      prefix,
      limits: new HostLimitTable({ concurrency: 1, ratePerSecond: 0, burst: 1 }),
    });
    const throttled = new AbortController();
    const waiting = fetch(`${proxyUrl}/${THROTTLED}/@v/v1.0.0.info`, { signal: throttled.signal }).catch(
      () => undefined,
    );
    try {
      await waitUntil(async () => (await politeness.state(upstream.host)).coolingDownUntil !== undefined, {
        what: 'the upstream host cooling down after its 429',
        timeoutMs: 60_000,
      });
    } finally {
      // The client gives up; the job stays queued, waiting for the host.
      throttled.abort();
      await waiting;
      await redis.quit();
    }
  });

  afterAll(async () => {
    for (const process of started.reverse()) await process.stop();
    await upstream?.close();
    if (dir) await removeDir(dir);
  });

  it('Bull Board refuses a browser without credentials: 401 with a Basic challenge, and nothing of the board', async () => {
    const browser = await openBrowserSession();
    try {
      const answers: BrowserResponse[] = [];
      browser.page.on('response', (response) => answers.push(response));
      await expect(browser.page.goto(`${crathensAdmin}/admin/queues`)).rejects.toThrow(
        /ERR_INVALID_AUTH_CREDENTIALS/,
      );
      expect(answers.map((response) => response.status())).toEqual([401]);
      expect(answers[0]?.headers()['www-authenticate']).toContain('Basic realm="modproxy admin"');
      expect(browser.offLoopback).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('Bull Board lists the fetch, crawl and crawl-schedule queues, and the failed fetch of an unknown version with its failure', async () => {
    const browser = await openBrowserSession({ httpCredentials: { username: 'admin', password: PASSWORD } });
    const { page } = browser;
    try {
      const board = await page.goto(`${crathensAdmin}/admin/queues`);
      expect(board?.status()).toBe(200);
      const menu = page.getByRole('navigation');
      for (const queue of ['fetch', 'crawl', 'crawl-schedule']) {
        await expect.poll(async () => menu.getByText(queue, { exact: true }).count()).toBe(1);
      }
      await page.goto(`${crathensAdmin}/admin/queues/queue/fetch?status=failed`);
      // The failed job's card: its id, and its failure as the worker wrote it, on screen.
      await page.getByText(`${MISSING}@v1.9.9`).first().waitFor({ state: 'visible' });
      const reason = page.getByText(/\[not-found\] .*not found upstream/).first();
      await reason.waitFor({ state: 'visible' });
      await page.screenshot({
        path: join(root, 'tmp', 'screenshots', 'bull-board-failed.png'),
        fullPage: true,
      });
      expect(await reason.innerText()).toContain(`${MISSING}@v1.9.9`);
      expect(await page.locator('body').innerText()).not.toContain(`${GOOD}@v1.0.0`);
      // The board's web font link never left the machine (its Content-Security-Policy blocks it).
      expect(browser.offLoopback).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('the proxy’s status page refuses a browser without credentials', async () => {
    const browser = await openBrowserSession();
    try {
      const answers: BrowserResponse[] = [];
      browser.page.on('response', (response) => answers.push(response));
      await expect(browser.page.goto(`${proxyAdmin}/`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
      expect(answers.map((response) => response.status())).toEqual([401]);
      expect(answers[0]?.headers()['www-authenticate']).toContain('Bearer realm="modproxy admin"');
    } finally {
      await browser.close();
    }
  });

  it('the proxy’s status page shows the version just fetched, the failure just caused, and the host in cooldown', async () => {
    const browser = await openBrowserSession({ extraHTTPHeaders: { authorization: `Bearer ${TOKEN}` } });
    const { page } = browser;
    try {
      const answer = await page.goto(`${proxyAdmin}/`);
      expect(answer?.status()).toBe(200);
      await page.screenshot({ path: join(root, 'tmp', 'screenshots', 'proxy-status.png'), fullPage: true });

      const fetched = page.locator(`#fetched tr[data-module="${GOOD}"][data-version="v1.0.0"]`);
      expect(await fetched.count()).toBe(1);
      expect(await fetched.innerText()).toContain('fetch queue');

      const failure = page.locator(`#failures tr[data-module="${MISSING}"][data-version="v1.9.9"]`);
      expect(await failure.count()).toBe(1);
      const failureText = await failure.innerText();
      expect(failureText).toContain('not-found');
      expect(failureText).toMatch(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);

      const host = page.locator(`#hosts tr[data-host="${upstream.host}"]`);
      expect(await host.count()).toBe(1);
      const hostText = await host.innerText();
      expect(hostText).toContain('cooling down');
      expect(hostText).toMatch(/\(in \d+ min\)/);
      expect(hostText).toContain('upstream failed: 429');
      expect(browser.offLoopback).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('no process prints the admin password or token, in any form', () => {
    const printed = started.map((child) => `${child.stdout()}\n${child.stderr()}`).join('\n');
    expect(printed).toContain('proxy admin listening');
    for (const secret of [PASSWORD, TOKEN, Buffer.from(`admin:${PASSWORD}`).toString('base64')]) {
      expect(printed).not.toContain(secret);
    }
  });
});
