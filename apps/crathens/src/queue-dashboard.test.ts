import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadCrathensConfig } from './config';
import { CrathensHarness } from './test-support/crathens-harness';

const PASSWORD = 'dashboard-password-1';
const TOKEN = 'dashboard-token-0123456789';
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

interface BoardQueue {
  name: string;
  counts: Record<string, number>;
  jobs: Array<{ id: string; failedReason?: string; attemptsMade?: number }>;
}

/** crathens in process (real Redis, the storage service, fixture repositories), its admin port over HTTP. */
describe('the queue dashboard on crathens’ admin port', () => {
  let harness: CrathensHarness;

  beforeAll(async () => {
    harness = await CrathensHarness.start();
  });
  afterEach(async () => {
    await harness?.cleanUp();
  });
  afterAll(async () => {
    await harness?.stop();
  });

  it('serves Bull Board over fetch, crawl and crawl-schedule, with a failed fetch and its reason, only to Basic or bearer credentials', async () => {
    const prefix = harness.newPrefix();
    const { crathens } = await harness.startInProcess(prefix, {
      ADMIN_PASSWORD: PASSWORD,
      ADMIN_TOKEN: TOKEN,
    });
    const admin = crathens.adminUrl;
    const hello = harness.fixtures.hello;
    await expect(
      harness.producer(prefix).fetchAndWait(hello.path, 'v1.99.0', { timeoutMs: 120_000 }),
    ).rejects.toMatchObject({ kind: 'not-found' });

    // Probes and scrapers need no credentials.
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      expect((await fetch(`${admin}${path}`)).status, path).toBe(200);
    }
    for (const path of ['/admin/queues', '/admin/queues/api/queues']) {
      const refused = await fetch(`${admin}${path}`);
      expect(refused.status, path).toBe(401);
      expect(refused.headers.get('www-authenticate')).toContain('Basic realm="modproxy admin"');
      expect(await refused.text()).toBe('authentication required\n');
      const wrong = await fetch(`${admin}${path}`, { headers: { authorization: basic('admin', TOKEN) } });
      expect(wrong.status, path).toBe(401);
    }

    const page = await fetch(`${admin}/admin/queues`, {
      headers: { authorization: basic('admin', PASSWORD) },
    });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    // The page may not make the operator's browser call anyone but us (it links a web font).
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await page.text()).toContain('modproxy queues');

    const api = await fetch(`${admin}/admin/queues/api/queues?activeQueue=fetch&status=failed&page=1`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(api.status).toBe(200);
    const { queues } = (await api.json()) as { queues: BoardQueue[] };
    expect(queues.map((queue) => queue.name).sort()).toEqual(['crawl', 'crawl-schedule', 'fetch']);
    const fetchQueue = queues.find((queue) => queue.name === 'fetch');
    expect(fetchQueue?.counts['failed']).toBe(1);
    expect(fetchQueue?.jobs).toEqual([
      expect.objectContaining({
        id: `${hello.path}@v1.99.0`,
        failedReason: expect.stringMatching(/^\[not-found\] /),
      }),
    ]);
  });

  it('is off (404) without credentials, and open without them only when explicitly allowed on loopback', async () => {
    const off = await harness.startInProcess(harness.newPrefix());
    expect((await fetch(`${off.crathens.adminUrl}/admin/queues`)).status).toBe(404);
    expect((await fetch(`${off.crathens.adminUrl}/healthz`)).status).toBe(200);

    const open = await harness.startInProcess(harness.newPrefix(), { ADMIN_ALLOW_UNAUTHENTICATED: 'true' });
    expect((await fetch(`${open.crathens.adminUrl}/admin/queues/api/queues`)).status).toBe(200);
    // Anywhere else, an open dashboard is a configuration error naming the variable.
    const prefix = harness.newPrefix();
    expect(() =>
      loadCrathensConfig({
        env: harness.env(prefix, { ADMIN_ALLOW_UNAUTHENTICATED: 'true', ADMIN_HOST: '0.0.0.0' }),
      }),
    ).toThrow(/ADMIN_ALLOW_UNAUTHENTICATED.*loopback/);
    expect(() => loadCrathensConfig({ env: harness.env(prefix, { ADMIN_PASSWORD: 'short' }) })).toThrow(
      /ADMIN_PASSWORD/,
    );
  });
});
