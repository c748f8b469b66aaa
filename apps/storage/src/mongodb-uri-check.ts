import { MongoClient } from 'mongodb';
import { ConnectionString } from 'mongodb-connection-string-url';

/**
 * The parser's own reasons, said again in words that quote nothing of the URI: some of its
 * messages quote the user name or the whole URI, and those are secrets.
 */
const PARSER_REASONS: ReadonlyArray<[RegExp, string]> = [
  [/^Invalid scheme/, 'must start with mongodb:// or mongodb+srv://'],
  [/^Protocol and host list are required/, 'must name at least one host'],
  [/^Username contains unescaped characters/, 'has characters in the user name that must be percent-encoded'],
  [/^Password contains unescaped characters/, 'has characters in the password that must be percent-encoded'],
  [/^URI contained empty userinfo section/, 'has an empty user name and password before "@"'],
  [/^URI malformed/, 'has a malformed percent-encoding in the user name or password'],
  [/^mongodb\+srv URI cannot have multiple service names/, 'must name a single host with mongodb+srv://'],
  [/^mongodb\+srv URI cannot have port number/, 'must not give a port with mongodb+srv://'],
];

/**
 * Why the MongoDB driver would refuse this connection string, or undefined when it takes it:
 * first the driver's own connection-string parser (mongodb-connection-string-url), then the
 * driver's reading of its options (a client is made, never connected). The reason never quotes
 * the URI: for an option, it names the option, not its value.
 */
export function mongodbUriProblem(uri: string): string | undefined {
  try {
    new ConnectionString(uri);
  } catch (error) {
    const message = error instanceof Error ? error.message : '';
    return (
      PARSER_REASONS.find(([pattern]) => pattern.test(message))?.[1] ??
      'is not a connection string the MongoDB driver accepts'
    );
  }
  try {
    // Parses and checks every option at once; it connects only on connect().
    new MongoClient(uri);
  } catch (error) {
    const message = error instanceof Error ? error.message.toLowerCase() : '';
    const option = optionNames(uri).find((name) => message.includes(name.toLowerCase()));
    return option === undefined
      ? 'has options the MongoDB driver refuses'
      : `has a value of the option ${option} that the MongoDB driver refuses`;
  }
  return undefined;
}

/** The option names in the query of a URI the parser took (names only: values may be secrets). */
function optionNames(uri: string): string[] {
  const query = uri.indexOf('?');
  if (query < 0) return [];
  return (
    uri
      .slice(query + 1)
      .split('&')
      .map((pair) => pair.split('=')[0] ?? '')
      .filter((name) => /^[A-Za-z][A-Za-z0-9]*$/.test(name))
      // The longest first: `tls` must not take the blame for `tlsCAFile`.
      .sort((a, b) => b.length - a.length)
  );
}
