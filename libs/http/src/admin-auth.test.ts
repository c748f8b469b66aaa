import { createServer, type Server } from 'node:http';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configSecrets, isSecretVariable } from '@modproxy/config';
import { AdminAuth, type AdminAuthOptions } from './admin-auth';
import { adminAuthConfigShape, checkAdminAuthConfig } from './admin-auth-config';
import { closeHttp, listenHttp } from './http-server';

const PASSWORD = 'correct horse battery';
const TOKEN = 'tok_0123456789abcdef';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => closeHttp(server, 1_000)));
});

/** A real HTTP server with one guarded page and one unguarded one. */
async function serve(options: AdminAuthOptions): Promise<string> {
  const auth = new AdminAuth(options);
  const app = express();
  app.get('/healthz', (_req, res) => res.send('ok\n'));
  app.use('/admin', auth.guard);
  app.all('/admin/page', (_req, res) => res.send('the page\n'));
  const server = createServer(app);
  servers.push(server);
  return listenHttp(server, 0, '127.0.0.1');
}

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('AdminAuth', () => {
  it('lets in HTTP Basic with the user and password, and a bearer token, and nothing else', async () => {
    const url = await serve({ user: 'ops', password: PASSWORD, token: TOKEN });
    const page = (authorization?: string) =>
      fetch(`${url}/admin/page`, authorization ? { headers: { authorization } } : {});

    for (const good of [basic('ops', PASSWORD), `Bearer ${TOKEN}`, `bearer ${TOKEN}`]) {
      const response = await page(good);
      expect(response.status, good).toBe(200);
      expect(await response.text()).toBe('the page\n');
    }
    for (const bad of [
      undefined,
      basic('admin', PASSWORD),
      basic('ops', `${PASSWORD}x`),
      basic('ops', ''),
      `Basic ${Buffer.from(PASSWORD).toString('base64')}`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer ${PASSWORD}`,
      `Token ${TOKEN}`,
      TOKEN,
    ]) {
      const response = await page(bad);
      expect(response.status, String(bad)).toBe(401);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(await response.text()).toBe('authentication required\n');
      // One challenge per scheme configured (fetch joins repeated headers with ", ").
      const challenge = response.headers.get('www-authenticate') ?? '';
      expect(challenge).toMatch(
        /^Basic realm="modproxy admin", charset="UTF-8", Bearer realm="modproxy admin"$/,
      );
    }
    // Pages outside the guard stay open.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('challenges only for the schemes configured: a token alone asks for Bearer, so no browser prompt', async () => {
    const url = await serve({ token: TOKEN });
    const refused = await fetch(`${url}/admin/page`, { headers: { authorization: basic('admin', TOKEN) } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="modproxy admin"');
  });

  it('hides the pages (404) when no credential is configured, unless explicitly opened', async () => {
    const off = await serve({});
    const hidden = await fetch(`${off}/admin/page`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(hidden.status).toBe(404);
    expect(hidden.headers.get('www-authenticate')).toBeNull();
    expect(await hidden.text()).toBe('not found\n');

    const open = await serve({ allowUnauthenticated: true });
    expect((await fetch(`${open}/admin/page`)).status).toBe(200);
    // Credentials, once configured, are required even when unauthenticated access was allowed.
    const both = await serve({ allowUnauthenticated: true, password: PASSWORD });
    expect((await fetch(`${both}/admin/page`)).status).toBe(401);
  });

  it('refuses a request that may change something when a browser says it came from another site', async () => {
    const url = await serve({ password: PASSWORD });
    const authorization = basic('admin', PASSWORD);
    const post = (headers: Record<string, string>) =>
      fetch(`${url}/admin/page`, { method: 'POST', headers: { authorization, ...headers } });

    // A form on another site posting with the browser's cached Basic credentials.
    const forgeries: Array<Record<string, string>> = [
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: 'http://evil.example' },
      { origin: 'null' },
    ];
    for (const forged of forgeries) {
      const response = await post(forged);
      expect(response.status, JSON.stringify(forged)).toBe(403);
      expect(await response.text()).toBe('cross-site request refused\n');
    }
    const own: Array<Record<string, string>> = [
      // Behind a reverse proxy that rewrites Host: the browser's Sec-Fetch-Site decides.
      { 'sec-fetch-site': 'same-origin', origin: 'http://rewritten.internal' },
      { origin: url },
      // Not a browser (curl, a script): no cached credentials to abuse.
      {},
    ];
    for (const headers of own) {
      expect((await post(headers)).status, JSON.stringify(headers)).toBe(200);
    }
    // Reading is harmless from anywhere (it still needs the credentials).
    const read = await fetch(`${url}/admin/page`, {
      headers: { authorization, 'sec-fetch-site': 'cross-site', origin: 'http://evil.example' },
    });
    expect(read.status).toBe(200);
  });
});

describe('the admin authentication configuration', () => {
  const schema = z
    .object({ ADMIN_HOST: z.string().default('127.0.0.1'), ...adminAuthConfigShape })
    .superRefine(checkAdminAuthConfig);
  const messages = (input: Record<string, string>) => {
    const result = schema.safeParse(input);
    return result.success
      ? []
      : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  };

  it('opens the pages without credentials only on a loopback address', () => {
    expect(messages({ ADMIN_ALLOW_UNAUTHENTICATED: 'true' })).toEqual([]);
    expect(messages({ ADMIN_ALLOW_UNAUTHENTICATED: 'true', ADMIN_HOST: '[::1]' })).toEqual([]);
    expect(messages({ ADMIN_ALLOW_UNAUTHENTICATED: 'true', ADMIN_HOST: '0.0.0.0' })).toEqual([
      'ADMIN_ALLOW_UNAUTHENTICATED: may only be true when ADMIN_HOST (0.0.0.0) is a loopback address; set ADMIN_PASSWORD or ADMIN_TOKEN instead',
    ]);
    expect(messages({ ADMIN_HOST: '0.0.0.0', ADMIN_TOKEN: TOKEN })).toEqual([]);
  });

  it('names the variable of a weak or malformed credential', () => {
    expect(messages({ ADMIN_PASSWORD: 'short' })).toEqual(['ADMIN_PASSWORD: must be at least 12 characters']);
    expect(messages({ ADMIN_TOKEN: 'has a space in it, long' })).toEqual([
      'ADMIN_TOKEN: must be printable ASCII without spaces',
    ]);
    expect(messages({ ADMIN_USER: 'a:b' })).toEqual(['ADMIN_USER: must not contain ":" or spaces']);
  });

  it('treats ADMIN_PASSWORD and ADMIN_TOKEN as secrets, so every log line and error redacts them', () => {
    expect(isSecretVariable('ADMIN_PASSWORD')).toBe(true);
    expect(isSecretVariable('ADMIN_TOKEN')).toBe(true);
    expect(isSecretVariable('ADMIN_USER')).toBe(false);
    const secrets = configSecrets(schema.parse({ ADMIN_PASSWORD: PASSWORD, ADMIN_TOKEN: TOKEN }));
    expect(secrets).toEqual(expect.arrayContaining([PASSWORD, TOKEN]));
  });
});
