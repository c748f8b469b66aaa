import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '@modproxy/config';
import { upstreamConfigShape } from './upstream-config';

const schema = z.object(upstreamConfigShape);
const SECRET = 'tok3n-s3cret';

describe('upstream configuration', () => {
  it.each([
    ['a CR LF (a second header)', `Bearer ${SECRET}\r\nX-Injected: yes`],
    ['a bare LF', `Bearer ${SECRET}\n`],
    ['a NUL', `Bearer ${SECRET}\u0000`],
    ['DEL', `Bearer ${SECRET}\u007f`],
    ['a character beyond Latin-1', `Bearer ${SECRET}\u2028`],
    ['a leading space', ` Bearer ${SECRET}`],
    ['a trailing tab', `Bearer ${SECRET}\t`],
  ])('refuses an UPSTREAM_AUTHORIZATION with %s, naming the variable and never the value', (_what, value) => {
    let message = '';
    try {
      loadConfig(schema, { env: { UPSTREAM_AUTHORIZATION: value } });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/UPSTREAM_AUTHORIZATION: must be a valid HTTP header value/);
    expect(message).not.toContain(SECRET);
  });

  it('takes what a header value may be: visible characters, inner spaces and tabs, Latin-1', () => {
    for (const value of [`Bearer ${SECRET}`, 'Basic YWxpY2U6czNjcmV0', 'Token a\tb', 'x', 'caf\u00e9']) {
      expect(loadConfig(schema, { env: { UPSTREAM_AUTHORIZATION: value } }).UPSTREAM_AUTHORIZATION).toBe(
        value,
      );
    }
  });
});
