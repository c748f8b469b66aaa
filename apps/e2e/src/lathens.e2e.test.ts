import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createFixtureModules,
  createGoWorkspace,
  describeGoCommandScenarios,
  type FixtureModules,
} from '@modproxy/testing';
import { type ProductionShape, startProductionShape } from './deployment';

/** The whole production shape: list/latest through lathens (Redis), content through the storage service. */
describeGoCommandScenarios('proxy + lathens (Redis) + storage service (MongoDB)', (fixtures) =>
  startProductionShape(fixtures, { mongoUri: inject('mongoUri'), redisUrl: inject('redisUrl') }),
);

describe('lathens beside the embedded cache', () => {
  let fixtures: FixtureModules;
  let withLathens: ProductionShape;
  let embedded: ProductionShape;

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    withLathens = await startProductionShape(fixtures, {
      mongoUri: inject('mongoUri'),
      redisUrl: inject('redisUrl'),
    });
    embedded = await startProductionShape(fixtures, { mongoUri: inject('mongoUri') });
  });

  afterAll(async () => {
    await withLathens?.stop();
    await embedded?.stop();
    await fixtures?.close();
  });

  /** What a Go developer sees: `go list -m -versions` and `go get m@latest` for every fixture. */
  async function answers(proxyUrl: string): Promise<string[]> {
    const { GIT_CONFIG_GLOBAL: _unreachable, ...env } = fixtures.env;
    const workspace = await createGoWorkspace({ env: { ...env, GOPROXY: proxyUrl, GOFLAGS: '-modcacherw' } });
    try {
      const paths = fixtures.all.map((fixture) => fixture.path);
      const listed = await workspace.go(['list', '-m', '-versions', ...paths]);
      expect(listed.exitCode, listed.stderr).toBe(0);
      const got = await workspace.go(['get', ...paths.map((path) => `${path}@latest`)]);
      expect(got.exitCode, got.stderr).toBe(0);
      const resolved = await workspace.go(['list', '-m', ...paths]);
      expect(resolved.exitCode, resolved.stderr).toBe(0);
      return [...listed.stdout.trim().split('\n'), ...resolved.stdout.trim().split('\n')];
    } finally {
      await workspace.remove();
    }
  }

  it('gives the go command the same answers as the embedded cache', async () => {
    const viaLathens = await answers(withLathens.url);
    expect(viaLathens).toEqual(await answers(embedded.url));
    expect(viaLathens).toContain(`${fixtures.hello.path} ${fixtures.hello.versions.join(' ')}`);
  });

  it('keeps answering list and latest when lathens is down, and says readiness is degraded', async () => {
    const list = `${withLathens.url}/${fixtures.hello.escapedPath}/@v/list`;
    const before = await (await fetch(list)).text();
    expect((await (await fetch(`${withLathens.url}/readyz`)).text()).trim()).toBe('ok');
    expect(await withLathens.lathens?.stop()).toBe(0);
    const during = await fetch(list);
    expect(during.status).toBe(200);
    expect(await during.text()).toBe(before);
    const ready = await fetch(`${withLathens.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.text()).toMatch(/^degraded: lathens unavailable/);
  });
});
