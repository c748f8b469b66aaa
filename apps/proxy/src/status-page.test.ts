import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@modproxy/observability';
import { buildZip, CountingUpstream } from '@modproxy/testing';
import { loadProxyConfig } from './config';
import { startProxy, type RunningProxy } from './server';

const TOKEN = 'status-token-0123456789';
const PASSWORD = 'status-password-1';
/** The upstream's password: in UPSTREAM's userinfo, so in every detail that names the upstream. */
const UPSTREAM_SECRET = 'upstream-secret-4711';
const MODULE = 'example.com/status/m';

const silent = () =>
  createLogger({
    service: 'proxy-test',
    level: 'silent',
    destination: new Writable({ write: (_chunk, _encoding, done) => done() }),
  });

/** The proxy's embedded default (in-process fetches) with its admin port, against a counting upstream. */
describe('the proxy’s status page (embedded default)', () => {
  let upstream: CountingUpstream;
  let zip: Buffer;
  let proxy: RunningProxy | undefined;

  beforeAll(async () => {
    zip = await buildZip([
      { name: `${MODULE}@v1.0.0/go.mod`, data: `module ${MODULE}\n` },
      { name: `${MODULE}@v1.0.0/m.go`, data: 'package m\n' },
    ]);
    upstream = await CountingUpstream.start({
      answer: (path) => {
        if (path === `/${MODULE}/@v/v1.0.0.info`)
          return { status: 200, body: JSON.stringify({ Version: 'v1.0.0', Time: '2024-01-02T03:04:05Z' }) };
        if (path === `/${MODULE}/@v/v1.0.0.mod`) return { status: 200, body: `module ${MODULE}\n` };
        if (path === `/${MODULE}/@v/v1.0.0.zip`)
          return { status: 200, headers: { 'content-type': 'application/zip' }, body: zip };
        if (path.startsWith(`/${MODULE}/@v/v1.0.1.`))
          return { status: 502, body: `<b>backend down</b> (asked with ${UPSTREAM_SECRET})` };
        return { status: 404, body: 'not found' };
      },
    });
  });
  afterEach(async () => {
    await proxy?.shutdown();
    proxy = undefined;
  });
  afterAll(async () => {
    await upstream?.close();
  });

  async function start(env: Record<string, string>): Promise<RunningProxy> {
    const url = new URL(upstream.url);
    url.username = 'ci';
    url.password = UPSTREAM_SECRET;
    const config = loadProxyConfig({
      env: { PORT: '0', STORAGE_TYPE: 'memory', UPSTREAM: url.href.replace(/\/$/, ''), ...env },
    });
    proxy = await startProxy(config, silent());
    return proxy;
  }

  it('shows the version just fetched and the failure just caused, with the upstream’s credentials redacted, to the bearer token or Basic', async () => {
    const { url, adminUrl } = await start({ ADMIN_PORT: '0', ADMIN_TOKEN: TOKEN, ADMIN_PASSWORD: PASSWORD });
    expect((await fetch(`${url}/${MODULE}/@v/v1.0.0.zip`)).status).toBe(200);
    expect((await fetch(`${url}/${MODULE}/@v/v1.0.1.info`)).status).toBe(502);
    expect(adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const refused = await fetch(`${adminUrl}/`);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe(
      'Basic realm="modproxy admin", charset="UTF-8", Bearer realm="modproxy admin"',
    );
    expect(await refused.text()).not.toContain(MODULE);

    for (const authorization of [
      `Bearer ${TOKEN}`,
      `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`,
    ]) {
      const page = await fetch(`${adminUrl}/`, { headers: { authorization } });
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(page.headers.get('cache-control')).toBe('no-store');
      expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
      const html = await page.text();
      const fetched = section(html, 'fetched');
      expect(fetched).toContain(`data-module="${MODULE}" data-version="v1.0.0"`);
      expect(fetched).toContain('this process');
      const failures = section(html, 'failures');
      expect(failures).toContain(`data-module="${MODULE}" data-version="v1.0.1"`);
      expect(failures).toContain('bad-gateway');
      // The upstream's answer is in the operator detail, escaped, and its credentials are not.
      expect(failures).toContain('&lt;b&gt;backend down&lt;/b&gt;');
      expect(html).not.toContain(UPSTREAM_SECRET);
      expect(section(html, 'hosts')).toContain('No queue Redis configured');
    }
    // The page answers reads only.
    const post = await fetch(`${adminUrl}/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(post.status).toBe(405);
  });

  it('has no admin port without ADMIN_PORT, and a status page that is off (404) without credentials', async () => {
    expect((await start({})).adminUrl).toBeUndefined();
    await proxy?.shutdown();
    const { adminUrl } = await start({ ADMIN_PORT: '0' });
    const hidden = await fetch(`${adminUrl}/`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(hidden.status).toBe(404);
    expect(() =>
      loadProxyConfig({
        env: { ADMIN_PORT: '0', ADMIN_HOST: '0.0.0.0', ADMIN_ALLOW_UNAUTHENTICATED: 'true' },
      }),
    ).toThrow(/ADMIN_ALLOW_UNAUTHENTICATED/);
  });
});

/** The HTML of one `<section id=…>` of the page. */
function section(html: string, id: string): string {
  const start = html.indexOf(`<section id="${id}">`);
  if (start < 0) throw new Error(`no section ${id}`);
  return html.slice(start, html.indexOf('</section>', start));
}
