import { once } from 'node:events';
import { Agent, createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { connect, type ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { createFixtureModules, createTestCertificates, type FixtureModules } from '@modproxy/testing';
import { GitCommand } from './git-command';
import { GoGetDiscovery } from './go-get-discovery';
import { VcsRepoResolver } from './vcs-repo-resolver';
import { VcsTagLister } from './vcs-tag-lister';

/** Pages by path (without the query); a function may answer any way it likes. */
type Page = string | ((response: import('node:http').ServerResponse) => void);

let fixtures: FixtureModules;
let server: Server;
let port = 0;
let ca: Buffer;
const pages = new Map<string, Page>();
const requests: string[] = [];
const sockets = new Set<Socket>();

/** Connects every https URL to the loopback test server, as if the name resolved to it. */
class LoopbackAgent extends Agent {
  override createConnection(options: ConnectionOptions): Socket {
    return connect({
      ...options,
      host: '127.0.0.1',
      port,
      ca,
      servername: options.servername ?? 'vanity.test',
    });
  }
}

function meta(prefix: string, vcs: string, root: string): string {
  return `<html><head><meta name="go-import" content="${prefix} ${vcs} ${root}"></head><body>go get ${prefix}</body></html>`;
}

beforeAll(async () => {
  fixtures = await createFixtureModules();
  const certificates = createTestCertificates({ dnsNames: ['vanity.test', 'other.test'] });
  ca = certificates.ca.cert;
  server = createServer(
    { cert: certificates.server.cert, key: certificates.server.key },
    (request, response) => {
      requests.push(`${request.headers.host ?? ''}${request.url ?? ''}`);
      const path = `${request.headers.host ?? ''}${(request.url ?? '').split('?')[0] ?? ''}`;
      const page = pages.get(path);
      if (typeof page === 'function') return page(response);
      if (page === undefined) {
        response.writeHead(404).end('<html><head></head></html>');
        return;
      }
      response.writeHead(200, { 'content-type': 'text/html' }).end(page);
    },
  );
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  port = typeof address === 'object' && address ? address.port : 0;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server?.close(resolve));
  await fixtures?.close();
});

beforeEach(() => {
  pages.clear();
  requests.length = 0;
});

function discovery(timeoutMs = 5_000): GoGetDiscovery {
  return new GoGetDiscovery({ agent: new LoopbackAgent({ keepAlive: false }), timeoutMs });
}

function lister(resolver = new VcsRepoResolver({ discovery: discovery() })): VcsTagLister {
  return new VcsTagLister({ git: new GitCommand({ env: fixtures.directEnv }), resolver });
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected a failure'),
    (error: unknown) => error,
  );
}

describe('go-get discovery for the crawl', () => {
  it("lists a vanity path's tags from the repository its go-import tag names, asking the host once", async () => {
    pages.set('vanity.test/hello', meta('vanity.test/hello', 'git', 'https://example.test/hello'));
    const resolver = new VcsRepoResolver({ discovery: discovery() });
    const vcs = lister(resolver);
    const listing = await vcs.list('vanity.test/hello');
    expect(listing.versions.sort()).toEqual([...fixtures.hello.versions].sort());
    expect(listing.location).toEqual({
      root: 'vanity.test/hello',
      url: 'https://example.test/hello',
      subdir: '',
      source: 'go-get',
    });
    expect(requests).toEqual(['vanity.test/hello?go-get=1']);
    await vcs.list('vanity.test/hello');
    expect(requests).toHaveLength(1);
  });

  it('confirms a shorter prefix with its own page, and lists the sub-module by its directory', async () => {
    const nested = meta('vanity.test/nested', 'git', 'https://example.test/nested');
    pages.set('vanity.test/nested/sub', nested);
    pages.set('vanity.test/nested', nested);
    const listing = await lister().list('vanity.test/nested/sub');
    expect(listing.versions).toEqual(['v1.0.0']);
    expect(requests).toEqual(['vanity.test/nested/sub?go-get=1', 'vanity.test/nested?go-get=1']);
  });

  it('refuses a prefix its own page does not confirm', async () => {
    pages.set('vanity.test/a/b', meta('vanity.test/a', 'git', 'https://example.test/hello'));
    pages.set('vanity.test/a', meta('vanity.test/a', 'git', 'https://example.test/elsewhere'));
    const error = await failure(lister().list('vanity.test/a/b'));
    expect(isModuleError(error, 'bad-gateway')).toBe(true);
  });

  it('leaves other VCSs, module proxies and non-https repositories to lathens', async () => {
    pages.set('vanity.test/hg', meta('vanity.test/hg', 'hg', 'https://hg.example/x'));
    pages.set('vanity.test/mod', meta('vanity.test/mod', 'mod', 'https://proxy.example'));
    pages.set('vanity.test/ssh', meta('vanity.test/ssh', 'git', 'ssh://git@git.example/x'));
    for (const module of ['vanity.test/hg', 'vanity.test/mod', 'vanity.test/ssh', 'example.test/x.hg/y'])
      expect(isModuleError(await failure(lister().list(module)), 'failed-precondition'), module).toBe(true);
  });

  it('answers not-found for a 404 page without a go-import tag', async () => {
    const error = await failure(lister().list('vanity.test/none'));
    expect(isModuleError(error, 'not-found')).toBe(true);
  });

  it('refuses a redirect to plain http', async () => {
    pages.set('vanity.test/plain', (response) =>
      response.writeHead(302, { location: 'http://other.test/plain?go-get=1' }).end(),
    );
    const error = await failure(lister().list('vanity.test/plain'));
    expect(isModuleError(error, 'bad-gateway')).toBe(true);
    expect((error as Error).message).toMatch(/non-https/);
  });

  it('reads no further than its size limit', async () => {
    // The go-import tag comes after 2 MiB of head: past the 1 MiB read limit, so never seen.
    pages.set(
      'vanity.test/huge',
      `<html><head>${'<!-- -->'.repeat(262_144)}${meta('vanity.test/huge', 'git', 'https://example.test/hello').slice(12)}`,
    );
    const error = await failure(lister().list('vanity.test/huge'));
    expect(isModuleError(error, 'bad-gateway')).toBe(true);
    expect((error as Error).message).toMatch(/found no go-import meta tag/);
  });

  it('gives up on a host that does not answer within the deadline', async () => {
    pages.set('vanity.test/silent', () => undefined);
    const resolver = new VcsRepoResolver({ discovery: discovery(300) });
    const error = await failure(lister(resolver).list('vanity.test/silent'));
    expect(isModuleError(error, 'timeout')).toBe(true);
  });

  it('knows github.com, bitbucket.org, simple gitlab.com paths and .git qualifiers without asking', async () => {
    const resolver = new VcsRepoResolver({ discovery: discovery() });
    await expect(resolver.resolve('github.com/o/r/sub/v2')).resolves.toMatchObject({
      root: 'github.com/o/r',
      url: 'https://github.com/o/r',
    });
    await expect(resolver.resolve('bitbucket.org/o/r')).resolves.toMatchObject({
      url: 'https://bitbucket.org/o/r',
    });
    await expect(resolver.resolve('gitlab.com/group/project/v3')).resolves.toMatchObject({
      root: 'gitlab.com/group/project',
    });
    await expect(resolver.resolve('git.example/team/r.git/v2')).resolves.toMatchObject({
      root: 'git.example/team/r.git',
      url: 'https://git.example/team/r',
      source: 'vcs-qualifier',
    });
    expect(requests).toEqual([]);
  });
});
