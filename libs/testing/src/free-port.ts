import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Below the kernel's ephemeral range, above the well-known and registered services people run. */
const LOWEST_PORT = 10_000;

/**
 * The first port of the range the kernel hands out for outgoing connections' local ports (and
 * for listen(0)); 32768 where it cannot be read.
 */
function ephemeralRangeStart(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const value = Number(low);
    return Number.isInteger(value) && value > LOWEST_PORT + 1000 ? value : 32_768;
  } catch {
    return 32_768;
  }
}

function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function osPicked(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close((error) => (error ? reject(error) : resolve(port)));
    });
  });
}

/**
 * A TCP port that was free a moment ago on every address (a server given it may listen on
 * 0.0.0.0), for a process the test starts later. It is taken below the kernel's ephemeral range:
 * a port from that range can be taken meanwhile as the local port of any outgoing connection on
 * the machine (the go command's, a load generator's, a Redis client's), which made a server
 * started on it fail with EADDRINUSE under load.
 */
export async function getFreePort(): Promise<number> {
  const span = ephemeralRangeStart() - LOWEST_PORT;
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = LOWEST_PORT + Math.floor(Math.random() * span);
    if ((await bindable(port, '0.0.0.0')) && (await bindable(port, '127.0.0.1'))) return port;
  }
  return osPicked();
}
