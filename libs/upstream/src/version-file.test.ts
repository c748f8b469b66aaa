import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { createUpstreamFromList } from './create-upstream';
import type { UpstreamCall } from './observed-upstream';
import { json, LoopbackServer, reply } from './test-support/loopback-server';
import type { Upstream } from './upstream';

const MODULE = 'example.com/Early';
const ESCAPED = 'example.com/!early';
const MOD = 'module example.com/Early\n\ngo 1.21\n';

async function kindOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isModuleError(error)) return error.kind;
    throw error;
  }
  return 'resolved';
}

/** A version's .info or .mod on its own, from upstream proxies over HTTP (real, on loopback). */
describe('versionFile: one file of a version without the zip', () => {
  let server: LoopbackServer;
  let second: LoopbackServer;
  const calls: UpstreamCall[] = [];
  const chains: Upstream[] = [];

  beforeEach(async () => {
    server = await LoopbackServer.start();
    second = await LoopbackServer.start();
    calls.length = 0;
  });

  afterEach(async () => {
    while (chains.length > 0) await chains.pop()?.close?.();
    await server.close();
    await second.close();
  });

  function chain(list: string): Upstream {
    const upstream = createUpstreamFromList(list, {
      direct: {},
      goproxy: {},
      onCall: (call) => calls.push(call),
    });
    chains.push(upstream);
    return upstream;
  }

  it('asks an upstream proxy for just that file, checks an .info as a fetch does, and counts the call', async () => {
    server.route(`/${ESCAPED}/@v/v1.0.0.mod`, reply(200, MOD));
    server.route(`/${ESCAPED}/@v/v1.0.0.info`, json({ Version: 'v1.0.0', Time: '2024-01-02T03:04:05Z' }));
    server.route(`/${ESCAPED}/@v/v1.1.0.info`, json({ Version: 'v1.1.0' }));
    server.route(`/${ESCAPED}/@v/v1.2.0.info`, json({ Version: 'v1.0.0', Time: '2024-01-02T03:04:05Z' }));
    const upstream = chain(server.url);
    expect((await upstream.versionFile?.(MODULE, 'v1.0.0', 'mod'))?.toString()).toBe(MOD);
    expect(JSON.parse((await upstream.versionFile?.(MODULE, 'v1.0.0', 'info'))?.toString() ?? '')).toEqual({
      Version: 'v1.0.0',
      Time: '2024-01-02T03:04:05Z',
    });
    // What a fetch would refuse is refused here too: no Time, another version.
    expect(await kindOf(upstream.versionFile?.(MODULE, 'v1.1.0', 'info') ?? Promise.resolve())).toBe(
      'bad-gateway',
    );
    expect(await kindOf(upstream.versionFile?.(MODULE, 'v1.2.0', 'info') ?? Promise.resolve())).toBe(
      'bad-gateway',
    );
    expect(await kindOf(upstream.versionFile?.(MODULE, 'v9.0.0', 'mod') ?? Promise.resolve())).toBe(
      'not-found',
    );
    expect(server.requests.map((request) => request.path)).toEqual([
      `/${ESCAPED}/@v/v1.0.0.mod`,
      `/${ESCAPED}/@v/v1.0.0.info`,
      `/${ESCAPED}/@v/v1.1.0.info`,
      `/${ESCAPED}/@v/v1.2.0.info`,
      `/${ESCAPED}/@v/v9.0.0.mod`,
    ]);
    expect(calls.map((call) => `${call.method} ${call.result}`)).toEqual([
      'mod ok',
      'info ok',
      'info bad-gateway',
      'info bad-gateway',
      'mod not-found',
    ]);
  });

  it('follows the list: the next proxy after a 404, undefined once the walk reaches direct', async () => {
    second.route(`/${ESCAPED}/@v/v1.0.0.mod`, reply(200, MOD));
    expect(
      (await chain(`${server.url},${second.url}`).versionFile?.(MODULE, 'v1.0.0', 'mod'))?.toString(),
    ).toBe(MOD);
    // direct cannot give a go.mod alone without cloning: the caller fetches the whole version.
    expect(await chain(`${server.url},direct`).versionFile?.(MODULE, 'v1.0.0', 'mod')).toBeUndefined();
    expect(await chain('direct').versionFile?.(MODULE, 'v1.0.0', 'mod')).toBeUndefined();
    expect(calls.filter((call) => call.upstream === 'direct')).toEqual([]);
    // A failure with `,` is the answer, as for every method.
    server.route(`/${ESCAPED}/@v/v1.0.0.mod`, reply(500, 'down'));
    expect(
      await kindOf(chain(`${server.url},direct`).versionFile?.(MODULE, 'v1.0.0', 'mod') ?? Promise.resolve()),
    ).toBe('bad-gateway');
  });
});
