import { errors } from '@modproxy/errors';

/** A page token: base64url of a JSON array of the values naming the last entry of a page. */
export function encodePageToken(values: readonly unknown[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

/**
 * The entry a page token names: `parse` checks the `arity` values and builds the entry
 * (undefined when they are not one), and `encode` spells it again, since Node's base64url
 * decoder skips junk and only the exact spelling handed out is accepted. Anything else is
 * invalid-argument ("invalid <what> page token").
 */
export function decodePageToken<T>(
  op: string,
  token: string,
  what: string,
  arity: number,
  parse: (values: unknown[]) => T | undefined,
  encode: (entry: T) => string,
): T {
  const invalid = () => errors.invalidArgument(op, `invalid ${what} page token`);
  if (typeof token !== 'string' || !/^[A-Za-z0-9_-]+$/.test(token)) throw invalid();
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(decoded) || decoded.length !== arity) throw invalid();
  const entry = parse(decoded as unknown[]);
  if (entry === undefined || encode(entry) !== token) throw invalid();
  return entry;
}
