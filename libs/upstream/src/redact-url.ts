/**
 * A base URL as shown in names, logs and error messages: the password replaced, like Go's
 * `URL.Redacted`, and without a trailing `/`.
 */
export function redactedBase(url: URL): string {
  const userinfo = url.username === '' ? '' : `${url.username}${url.password === '' ? '' : ':xxxxx'}@`;
  return `${url.protocol}//${userinfo}${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

/** Replaces a password in text that may not parse as a URL (a rejected configuration value). */
export function redactText(value: string): string {
  return value.replace(/(\/\/[^/@:\s]*):[^/@\s]*@/g, '$1:xxxxx@');
}
