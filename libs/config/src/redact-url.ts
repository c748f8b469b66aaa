/** What replaces a URL's userinfo (user name and password) wherever the URL is shown. */
export const REDACTED_USERINFO = 'xxxxx';

/**
 * A base URL as shown in names, logs and error messages: the whole userinfo replaced (a user
 * name identifies an account as much as a password opens it), and without a trailing `/`.
 */
export function redactedBase(url: URL): string {
  const userinfo = url.username === '' && url.password === '' ? '' : `${REDACTED_USERINFO}@`;
  return `${url.protocol}//${userinfo}${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * `//userinfo@`: the userinfo runs up to the first `@` and cannot hold `/`, `?`, `#`, quotes
 * or white space, so a path segment such as `/@v/list` is never taken for one.
 */
const USERINFO = /\/\/[^\s/?#@"'<>]+@/g;

/**
 * Replaces the userinfo of every URL in a text that may not parse as one (a rejected
 * configuration value, a driver's error message, a log line).
 */
export function redactText(value: string): string {
  return value.replace(USERINFO, `//${REDACTED_USERINFO}@`);
}
