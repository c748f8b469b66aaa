import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createFixtureModules,
  startAppProcess,
  type AppProcess,
  type FixtureModules,
} from '@modproxy/testing';
import {
  dashboardMetrics,
  isKnownMetric,
  metricTypes,
  ruleMetrics,
  samples,
  type MetricTypes,
  type Sample,
} from './metric-names';
import { startStorageProcess } from './storage-process';

const root = join(__dirname, '..', '..', '..');
const main = (app: string) => join(root, 'dist', 'apps', app, 'main.js');

/** Labels whose values are numbers by design: histogram buckets and summary quantiles. */
const NUMERIC_LABELS = new Set(['le', 'quantile']);
/** The one label that names a host (an upstream proxy's or a VCS host): it may hold dots. */
const HOST_LABEL = 'host';
const HOST_FORM = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/;
/** A Go module version, canonical or pseudo, or a query that names one. */
const VERSION_LIKE = /(^|[^a-z0-9])v\d+(\.\d+)?(\.\d+)?([-+.].*)?$|@/i;

/**
 * What is wrong with the labels of these samples: a value that looks like a module path (a
 * `/`, or a dotted host form outside the host label) or a version. Node's own version
 * (`*_nodejs_version_info{version}`) is the runtime's, not a module's.
 */
function labelProblems(found: Sample[]): string[] {
  const problems: string[] = [];
  for (const { name, labels } of found) {
    for (const [label, value] of Object.entries(labels)) {
      if (NUMERIC_LABELS.has(label)) continue;
      if (name.endsWith('_nodejs_version_info')) continue;
      const where = `${name}{${label}="${value}"}`;
      if (value.includes('/')) problems.push(`${where}: a path`);
      else if (VERSION_LIKE.test(value)) problems.push(`${where}: a version`);
      else if (value.includes('.') && !(label === HOST_LABEL && HOST_FORM.test(value)))
        problems.push(`${where}: a dotted name outside the host label`);
      else if (label === HOST_LABEL && !HOST_FORM.test(value) && value !== 'other')
        problems.push(`${where}: not a host`);
    }
  }
  return problems;
}

/** The value of the first series of `name` with these labels (others may be there too); 0 when none. */
function value(exposition: string, name: string, labels: Record<string, string>): number {
  const line = exposition
    .split('\n')
    .find(
      (candidate) =>
        candidate.startsWith(`${name}{`) &&
        Object.entries(labels).every(([label, wanted]) => candidate.includes(`${label}="${wanted}"`)),
    );
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/**
 * Every app of the production shape as a process (storage service on FerretDB, lathens on
 * Redis, crathens taking the fetch queue, the proxy in front of lathens and the queue), driven
 * through every kind of request, then scraped: no label names a module or a version, and every
 * metric the dashboard and the alert rules read is one that some app exports.
 */
describe('metrics of every app, scraped after real traffic', () => {
  let fixtures: FixtureModules;
  const started: AppProcess[] = [];
  const scraped = new Map<string, string>();
  let proxyUrl = '';

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    const token = randomBytes(24).toString('hex');
    const base = { PATH: process.env['PATH'] ?? '', HOME: fixtures.env['HOME'] ?? '', LOG_LEVEL: 'warn' };
    const storage = await startStorageProcess({
      env: { ...base },
      token,
      backend: { mongoUri: inject('mongoUri'), databasePrefix: 'metrics' },
    });
    started.push(storage);
    const storageEnv = {
      STORAGE_TYPE: 'grpc',
      STORAGE_GRPC_URL: `127.0.0.1:${storage.match[1] ?? ''}`,
      STORAGE_TOKEN: token,
    };
    const prefix = `metrics${randomBytes(4).toString('hex')}`;
    const lathens = await startAppProcess(main('lathens'), {
      env: {
        ...base,
        ...fixtures.directEnv,
        ...storageEnv,
        REDIS_URL: inject('redisUrl'),
        KEY_PREFIX: `${prefix}:`,
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        GRPC_TOKEN: token,
        UPSTREAM: 'direct',
      },
      ready: /lathens listening: grpc (\S+) http (\S+)/,
    });
    started.push(lathens);
    const lathensEnv = { LATHENS_GRPC_URL: lathens.match[1] ?? '', LATHENS_GRPC_TOKEN: token };
    const crathens = await startAppProcess(main('crathens'), {
      env: {
        ...base,
        ...fixtures.directEnv,
        ...lathensEnv,
        ADMIN_PORT: '0',
        QUEUE_REDIS_URL: inject('redisUrl'),
        QUEUE_PREFIX: prefix,
        STORAGE_GRPC_URL: storageEnv.STORAGE_GRPC_URL,
        STORAGE_TOKEN: token,
        UPSTREAM: 'direct',
      },
      ready: /crathens running: admin (\S+)/,
    });
    started.push(crathens);
    const proxy = await startAppProcess(main('proxy'), {
      env: {
        ...base,
        ...fixtures.directEnv,
        ...storageEnv,
        ...lathensEnv,
        PORT: '0',
        UPSTREAM: 'direct',
        QUEUE_REDIS_URL: inject('redisUrl'),
        QUEUE_PREFIX: prefix,
      },
      ready: /export GOPROXY=(\S+)/,
    });
    started.push(proxy);
    proxyUrl = proxy.match[1] ?? '';

    // Every kind of request: list and latest (lathens), cold .info (a FetchVersion job for
    // crathens), warm .mod and .zip, HEAD, a version query, what is not there, what is invalid.
    const { hello, mixedCase } = fixtures;
    const statuses: Record<string, number> = {};
    const get = async (path: string, method = 'GET') => {
      const response = await fetch(`${proxyUrl}${path}`, { method });
      await response.arrayBuffer();
      statuses[`${method} ${path}`] = response.status;
    };
    for (const module of [hello, mixedCase]) {
      await get(`/${module.escapedPath}/@v/list`);
      await get(`/${module.escapedPath}/@latest`);
      const version = module.versions[0] ?? '';
      for (const file of ['info', 'mod', 'zip']) await get(`/${module.escapedPath}/@v/${version}.${file}`);
      await get(`/${module.escapedPath}/@v/${version}.zip`);
      await get(`/${module.escapedPath}/@v/${version}.zip`, 'HEAD');
    }
    await get(`/${hello.escapedPath}/@v/main.info`);
    await get(`/${fixtures.missingModule}/@v/v1.0.0.info`);
    await get(`/${hello.escapedPath}/@v/not-a-version.zip`);
    await get('/no-such-route');
    const lathensHttp = lathens.match[2] ?? '';
    await fetch(`${lathensHttp}/${hello.escapedPath}/@v/list`).then((response) => response.arrayBuffer());
    expect(statuses[`GET /${hello.escapedPath}/@v/${hello.versions[0]}.zip`]).toBe(200);
    expect(statuses[`GET /${fixtures.missingModule}/@v/v1.0.0.info`]).toBe(404);
    expect(statuses[`GET /${hello.escapedPath}/@v/not-a-version.zip`]).toBe(400);

    const endpoints: Record<string, string> = {
      proxy: `${proxyUrl}/metrics`,
      storage: `http://127.0.0.1:${storage.match[2] ?? ''}/metrics`,
      lathens: `${lathensHttp}/metrics`,
      crathens: `${crathens.match[1] ?? ''}/metrics`,
    };
    for (const [app, url] of Object.entries(endpoints)) {
      const response = await fetch(url);
      expect(response.status, app).toBe(200);
      scraped.set(app, await response.text());
    }
  });

  afterAll(async () => {
    for (const process of started.reverse()) await process.stop();
    await fixtures?.close();
  });

  it('counted the traffic it was given (so the label check below looks at real series)', () => {
    const proxy = scraped.get('proxy') ?? '';
    // Per module: two GETs and a HEAD, all after the .info fetched the version.
    expect(value(proxy, 'modproxy_cache_requests_total', { endpoint: 'zip', result: 'hit' })).toBe(6);
    expect(value(proxy, 'modproxy_cache_requests_total', { endpoint: 'info', result: 'miss' })).toBe(2);
    // hello's and mixedCase's first versions, and the version hello's main branch resolves to.
    expect(value(proxy, 'modproxy_queue_fetches_total', { mode: 'wait', outcome: 'completed' })).toBe(3);
    expect(value(proxy, 'modproxy_http_requests_total', { route: 'zip', status: '400' })).toBe(1);
    expect(value(proxy, 'modproxy_http_requests_total', { route: 'other', status: '404' })).toBe(1);
    const query = { upstream: 'direct', host: 'example.test', method: 'info', result: 'ok' };
    expect(value(proxy, 'modproxy_upstream_requests_total', query)).toBe(1);
    const crathens = scraped.get('crathens') ?? '';
    expect(value(crathens, 'crathens_job_attempts_total', { queue: 'fetch', outcome: 'completed' })).toBe(3);
    const fetches = { upstream: 'direct', host: 'example.test', method: 'fetch', result: 'ok' };
    expect(value(crathens, 'crathens_upstream_requests_total', fetches)).toBe(3);
    const storage = scraped.get('storage') ?? '';
    expect(value(storage, 'modproxy_storage_zip_bytes_total', { direction: 'served' })).toBeGreaterThan(0);
    expect(value(storage, 'modproxy_storage_grpc_server_handled_total', { method: 'Save', code: 'OK' })).toBe(
      3,
    );
    const lathens = scraped.get('lathens') ?? '';
    expect(
      value(lathens, 'lathens_grpc_server_handled_total', { method: 'List', code: 'OK' }),
    ).toBeGreaterThan(0);
    expect(value(lathens, 'lathens_answers_total', { kind: 'list', outcome: 'refreshed' })).toBeGreaterThan(
      0,
    );
  });

  it('never puts a module path or a version in a label, in any app', () => {
    for (const [app, exposition] of scraped) {
      const found = samples(exposition);
      expect(found.length, app).toBeGreaterThan(50);
      expect(labelProblems(found), app).toEqual([]);
      for (const module of fixtures.all) expect(exposition, app).not.toContain(module.path);
    }
  });

  it('the label check itself catches a module path, a version and a dotted name', () => {
    expect(
      labelProblems(
        samples(
          'a_total{module="example.test/hello.git"} 1\nb_total{version="v1.2.3"} 1\nc_total{name="golang.org"} 1\nd_total{host="example.test"} 1\n',
        ),
      ),
    ).toEqual([
      'a_total{module="example.test/hello.git"}: a path',
      'b_total{version="v1.2.3"}: a version',
      'c_total{name="golang.org"}: a dotted name outside the host label',
    ]);
  });

  it('exports every metric the Grafana dashboard and the alert rules read', async () => {
    const exported: MetricTypes = new Map();
    for (const exposition of scraped.values())
      for (const [name, type] of metricTypes(exposition)) exported.set(name, type);
    const rulesDir = join(root, 'deploy', 'prometheus', 'rules');
    const named = await dashboardMetrics(join(root, 'deploy', 'grafana', 'dashboards', 'modproxy.json'));
    const recorded = new Set<string>();
    for (const file of (await readdir(rulesDir)).filter((name) => name.endsWith('.yml'))) {
      const rules = await ruleMetrics(join(rulesDir, file));
      named.push(...rules.read);
      for (const name of rules.recorded) recorded.add(name);
    }
    expect(named.length).toBeGreaterThan(50);
    const unknown = named.filter(({ name }) => !isKnownMetric(name, exported, recorded));
    expect(unknown.map(({ name, where }) => `${name} (${where})`)).toEqual([]);
  });
});
