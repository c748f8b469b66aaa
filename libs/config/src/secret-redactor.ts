import { redactText } from './redact-url';

/** What replaces a known secret value. */
export const REDACTED = '[redacted]';

/**
 * Shorter values are hidden only inside URLs: replacing every `dev` or `go` in a log line
 * would hide more than it protects.
 */
export const MIN_REDACTED_LENGTH = 4;

/** A JSON string token, quotes included. */
const JSON_STRING = /"(?:[^"\\]|\\.)*"/g;

/**
 * Hides the secret values a process knows (its configuration's tokens, passwords and URL
 * userinfo) and the userinfo of any URL, in any text: a log line, an error message, a banner.
 */
export class SecretRedactor {
  private readonly plain: RegExp | undefined;
  private readonly escaped: RegExp | undefined;

  constructor(secrets: Iterable<string> = []) {
    // A secret may also travel percent-encoded (a redirect's query string, a URL's userinfo).
    const forms = [...secrets].flatMap((value) => [value, encodeURIComponent(value)]);
    const values = [...new Set(forms)].filter((value) => value.length >= MIN_REDACTED_LENGTH);
    // Longest first, so a secret that contains another is replaced whole.
    values.sort((a, b) => b.length - a.length);
    this.plain = alternation(values);
    // Inside a JSON string a secret appears escaped (`"` as `\"`, control characters as `\u…`).
    // Escape sequences are matched whole when no secret starts at them, so a match never
    // begins in the middle of one (`\n` followed by a secret that starts with `n`).
    const escaped = alternation(values.map((value) => JSON.stringify(value).slice(1, -1)));
    this.escaped = escaped && new RegExp(`(${escaped.source})|\\\\(?:u[0-9a-fA-F]{4}|.)`, 'g');
  }

  /** The text with every known secret and every URL userinfo replaced. */
  redact(text: string): string {
    const withoutUserinfo = redactText(text);
    return this.plain ? withoutUserinfo.replace(this.plain, REDACTED) : withoutUserinfo;
  }

  /**
   * The same for one serialized JSON value (a log line): replacements happen only inside its
   * strings, so the line stays valid JSON whatever the secrets look like.
   */
  redactJson(line: string): string {
    const escaped = this.escaped;
    return line.replace(JSON_STRING, (token) => {
      const withoutUserinfo = redactText(token);
      if (!escaped) return withoutUserinfo;
      return withoutUserinfo.replace(escaped, (match, secret: string | undefined) =>
        secret === undefined ? match : REDACTED,
      );
    });
  }
}

function alternation(values: readonly string[]): RegExp | undefined {
  if (values.length === 0) return undefined;
  return new RegExp(values.map((value) => value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
}
