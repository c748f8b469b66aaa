import { existsSync } from 'node:fs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createTempDir, removeDir } from '@modproxy/testing';

/** Debian's chromium package; scripts/install-system-deps.sh installs it when missing. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Headless, and quiet: no GPU, no QUIC, none of the browser's own traffic (updates, sync,
 * safe browsing, first-run pages), and no name resolution at all (every page here is on a
 * loopback IP address; a name would be a request leaving the machine).
 */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];

export interface BrowserSessionOptions {
  /** Answers to HTTP Basic challenges. Default: none (a challenge fails the navigation). */
  httpCredentials?: { username: string; password: string };
  /** Sent with every request, e.g. `Authorization: Bearer …`. */
  extraHTTPHeaders?: Record<string, string>;
}

export interface BrowserSession {
  page: Page;
  context: BrowserContext;
  /** Requests the pages tried to send off loopback (each was aborted). */
  offLoopback: string[];
  close(): Promise<void>;
}

/**
 * Debian's Chromium, driven by playwright-core with its executable path (nothing downloads a
 * browser), with a fresh profile directory removed at the end. Every request to anything but a
 * loopback address is aborted and recorded, so a test can check the page stayed on this machine.
 */
export async function openBrowserSession(options: BrowserSessionOptions = {}): Promise<BrowserSession> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run scripts/install-system-deps.sh (apt-get install chromium)`);
  }
  const profile = await createTempDir('chromium-profile-');
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      ...(options.httpCredentials ? { httpCredentials: options.httpCredentials } : {}),
      ...(options.extraHTTPHeaders ? { extraHTTPHeaders: options.extraHTTPHeaders } : {}),
    });
  } catch (error) {
    await removeDir(profile);
    throw error;
  }
  const offLoopback: string[] = [];
  await context.route('**/*', async (route) => {
    const url = new URL(route.request().url());
    const loopback = url.hostname === '127.0.0.1' || url.hostname === '[::1]' || url.hostname === 'localhost';
    if (url.protocol === 'data:' || loopback) return route.continue();
    offLoopback.push(url.href);
    await route.abort('blockedbyclient');
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    page,
    context,
    offLoopback,
    close: async () => {
      await context.close();
      await removeDir(profile);
    },
  };
}
