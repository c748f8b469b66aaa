import dns from 'node:dns';
import { lookup as namedLookup } from 'node:dns/promises';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAppProcess } from './app-process';
import { takeChildViolations } from './hermetic-children';
import { isLoopbackHost, takeHermeticViolations } from './hermetic-network';
import { createTempDir, removeDir } from './temp-dir';

// The guard is installed by the shared vitest setup (vitest.shared.ts) before this file runs;
// each test takes the violations it made on purpose, so that the setup does not fail it.
afterEach(() => {
  takeHermeticViolations();
  takeChildViolations();
});

function violations(): string[] {
  return takeHermeticViolations().map((violation) => violation.what);
}

describe('the hermetic network of every test process', () => {
  it('refuses the lookup of a name that is not this machine, as an unresolvable name, and records it', async () => {
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) =>
      dns.lookup('upstream.invalid', (failure) => resolve(failure)),
    );
    expect(error).toMatchObject({
      code: 'ENOTFOUND',
      message: expect.stringMatching(/hermetic test: refused/),
    });
    await expect(dns.promises.lookup('proxy.golang.org')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    // A named import is a separate binding of the same function.
    await expect(namedLookup('github.com', { all: true })).rejects.toMatchObject({ code: 'ENOTFOUND' });
    expect(violations()).toEqual([
      'name lookup of "upstream.invalid"',
      'name lookup of "proxy.golang.org"',
      'name lookup of "github.com"',
    ]);
  });

  it('refuses what fetch and node:http would resolve, before anything is sent', async () => {
    await expect(fetch('http://example.test:8080/x')).rejects.toThrow();
    expect(violations()).toEqual(['name lookup of "example.test"']);
  });

  it('refuses every DNS server query, even for localhost', async () => {
    await expect(dns.promises.resolveTxt('localhost')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(new dns.promises.Resolver().resolve4('example.com')).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
    const error = await new Promise<Error | null>((resolve) =>
      dns.resolveSrv('_mongodb._tcp.db.example', (failure) => resolve(failure)),
    );
    expect(error?.message).toMatch(/hermetic test: refused DNS query resolveSrv/);
    expect(violations()).toEqual([
      'DNS query resolveTxt("localhost")',
      'DNS query resolve4("example.com")',
      'DNS query resolveSrv("_mongodb._tcp.db.example")',
    ]);
  });

  it('refuses a connection to an address that is not loopback', async () => {
    const socket = connect(443, '192.0.2.1');
    const [error] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
    expect(error.message).toMatch(/refused connection to 192\.0\.2\.1/);
    expect(violations()).toEqual(['connection to 192.0.2.1']);
  });

  it('lets loopback through: localhost, 127.0.0.1, and their lookups', async () => {
    const server = createServer((socket) => socket.end('hello'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      for (const host of ['127.0.0.1', 'localhost']) {
        const socket = connect({ port, host, family: 4 });
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        await once(socket, 'end');
        expect(Buffer.concat(chunks).toString()).toBe('hello');
      }
      expect((await dns.promises.lookup('localhost', { family: 4 })).address).toBe('127.0.0.1');
      expect(violations()).toEqual([]);
    } finally {
      server.close();
    }
  });

  it('gives an app process started by a test the same guard, and reports what it refused', async () => {
    const dir = await createTempDir('hermetic-child-');
    try {
      const main = join(dir, 'main.mjs');
      await writeFile(
        main,
        [
          "import dns from 'node:dns';",
          "dns.lookup('registry.example', (error) => console.log(`looked up: ${error?.message}`));",
          'setInterval(() => undefined, 1000);',
        ].join('\n'),
      );
      const child = await startAppProcess(main, {
        env: { PATH: process.env['PATH'] ?? '' },
        ready: /looked up: (.*)/,
      });
      try {
        expect(child.match[1]).toMatch(/^hermetic test: refused name lookup of "registry\.example"/);
      } finally {
        await child.stop();
      }
      const reported = takeChildViolations();
      expect(reported.map((violation) => violation.what)).toEqual(['name lookup of "registry.example"']);
      expect(reported[0]?.stack).toContain(`pid ${child.child.pid}`);
    } finally {
      await removeDir(dir);
    }
  });

  it.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['::1', true],
    ['[::1]', true],
    ['::ffff:127.0.0.1', true],
    ['localhost', true],
    ['LOCALHOST.', true],
    ['proxy.localhost', true],
    ['10.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['localhost.example', false],
    ['upstream.invalid', false],
  ])('%s is this machine: %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });
});
