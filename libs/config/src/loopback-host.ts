import { isIP } from 'node:net';

/**
 * Whether a listen address is reachable only from this machine: `localhost`, 127.0.0.0/8 or
 * ::1 (also as `[::1]`). Anything else, `0.0.0.0` and `::` above all, may be reached from the
 * network. Decided from the text alone: no name is resolved.
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const name = bare.toLowerCase();
  if (name === 'localhost') return true;
  switch (isIP(name)) {
    case 4:
      return name.startsWith('127.');
    case 6:
      return name === '::1' || name === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(name);
    default:
      return false;
  }
}
