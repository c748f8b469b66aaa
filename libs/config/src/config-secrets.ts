/**
 * Variables whose whole value is a secret: `STORAGE_TOKEN`, `GRPC_TOKEN`,
 * `UPSTREAM_AUTHORIZATION`, and any `*_PASSWORD`, `*_SECRET` or `*_CREDENTIALS`.
 */
export function isSecretVariable(name: string): boolean {
  return /(^|_)(TOKEN|PASSWORD|SECRET|CREDENTIALS?|AUTHORIZATION)$/.test(name);
}

/**
 * Every secret value a configuration holds, in each form it may be shown in:
 * - the whole value of a secret variable ({@link isSecretVariable}), and for an
 *   `Authorization` value its credentials without the scheme (and a Basic one decoded);
 * - the userinfo of every URL in any value (`UPSTREAM`'s list, `REDIS_URL`, `MONGODB_URI`):
 *   the user name and the password, as written and percent-decoded, and as the Basic
 *   credentials an HTTP client makes of them.
 *
 * Works on validated and on raw configuration alike (values that are not strings, or lists of
 * strings, are skipped), so a configuration error can be cleaned of them too.
 */
export function configSecrets(config: Readonly<Record<string, unknown>>): string[] {
  const secrets = new Set<string>();
  for (const [name, value] of Object.entries(config)) {
    for (const text of strings(value)) {
      if (isSecretVariable(name)) addAuthorization(secrets, text);
      for (const userinfo of urlUserinfo(text)) addUserinfo(secrets, userinfo);
    }
  }
  secrets.delete('');
  return [...secrets];
}

function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string');
  return [];
}

function addAuthorization(secrets: Set<string>, value: string): void {
  secrets.add(value);
  const match = /^\s*(\S+)\s+(.+?)\s*$/.exec(value);
  if (!match) return;
  const [, scheme = '', credentials = ''] = match;
  secrets.add(credentials);
  if (scheme.toLowerCase() === 'basic') {
    const decoded = Buffer.from(credentials, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      secrets.add(decoded);
      secrets.add(decoded.slice(0, colon));
      secrets.add(decoded.slice(colon + 1));
    }
  }
}

/**
 * The userinfo of each `scheme://` in a text. Read the way an HTTP client reads it (up to the
 * last `@` before the host ends) and, for MongoDB connection strings, the way the MongoDB
 * driver does (up to the first `@`, whatever comes before it), so a value the driver rejects
 * is covered too.
 */
function urlUserinfo(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/([a-z][a-z0-9+.-]*):\/\//gi)) {
    const rest = text.slice((match.index ?? 0) + match[0].length);
    const authority = /^[^/?#\s,|]*/.exec(rest)?.[0] ?? '';
    const at = authority.lastIndexOf('@');
    if (at >= 0) found.push(authority.slice(0, at));
    if (/^mongodb/i.test(match[1] ?? '')) {
      const driver = /^([^@]*)@/.exec(rest)?.[1];
      if (driver !== undefined) found.push(driver);
    }
  }
  return found;
}

function addUserinfo(secrets: Set<string>, userinfo: string): void {
  const colon = userinfo.indexOf(':');
  const user = colon < 0 ? userinfo : userinfo.slice(0, colon);
  const password = colon < 0 ? '' : userinfo.slice(colon + 1);
  for (const value of [userinfo, user, password]) {
    secrets.add(value);
    secrets.add(percentDecoded(value));
  }
  // What an HTTP client sends for them (GoproxyUpstream does exactly this).
  const basic = `${percentDecoded(user)}:${percentDecoded(password)}`;
  secrets.add(basic);
  secrets.add(Buffer.from(basic).toString('base64'));
}

function percentDecoded(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
