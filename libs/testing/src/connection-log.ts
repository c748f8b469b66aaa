import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Which variable names the file an app process appends its connections to. */
const LOG_VARIABLE = 'MODPROXY_CONNECTION_LOG';

// Plain JavaScript, loaded with `node --import` before the app: every socket the process opens
// (HTTP agents, http2 and so gRPC, TLS, Redis, MongoDB: all go through Socket#connect) is
// written down before it connects.
const PRELOAD = `import net from 'node:net';
import { appendFileSync } from 'node:fs';
const file = process.env.${LOG_VARIABLE};
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const options = typeof first === 'object' && first !== null ? first : { port: first, host: args[1] };
  const where = options.path ?? \`\${options.host ?? 'localhost'}:\${options.port}\`;
  try { appendFileSync(file, where + '\\n'); } catch {}
  return connect.apply(this, args);
};
`;

export interface ConnectionLog {
  /** Pass to startAppProcess as `preload`. */
  preload: string;
  /** Add to the app's environment. */
  env: Record<string, string>;
  /** `host:port` (or socket path) of every connection attempted so far. */
  connections(): string[];
}

/**
 * A record of every connection an app process attempts, to show that it made none but those
 * it should (no telemetry export when none is configured, whatever the default endpoint).
 */
export function createConnectionLog(dir: string): ConnectionLog {
  const preload = join(dir, 'connection-log-preload.mjs');
  const log = join(dir, 'connections.log');
  writeFileSync(preload, PRELOAD);
  writeFileSync(log, '');
  return {
    preload,
    env: { [LOG_VARIABLE]: log },
    connections: () =>
      existsSync(log)
        ? readFileSync(log, 'utf8')
            .split('\n')
            .filter((line) => line !== '')
        : [],
  };
}
