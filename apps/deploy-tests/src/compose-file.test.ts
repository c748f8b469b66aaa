import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2019 from 'ajv/dist/2019';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '@modproxy/testing';
import { type ComposeFile, interpolate, publishedPort, readComposeFile } from './compose-model';
import { COMPOSE_FILE, REPO_ROOT } from './repo-paths';

/**
 * The compose specification's JSON schema as Debian's docker-compose package ships it
 * (scripts/install-system-deps.sh installs the package): the same schema `docker-compose
 * config` validates with, read by a second validator.
 */
const COMPOSE_SPEC_SCHEMA = '/usr/lib/python3/dist-packages/compose/config/compose_spec.json';

/** The schema without its draft-4 `id` names (string values of a key `id`). */
function withoutIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutIds);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key, item]) => !(key === 'id' && typeof item === 'string'))
      .map(([key, item]) => [key, withoutIds(item)]),
  );
}

const env = () => ({ PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root' });

describe('docker-compose.yml', () => {
  let compose: ComposeFile;

  beforeAll(() => {
    compose = readComposeFile(COMPOSE_FILE);
  });

  it('is valid for docker-compose config, with and without the observability profile', async () => {
    for (const profile of [[], ['--profile', 'observability']]) {
      const result = await runCommand('docker-compose', ['-f', COMPOSE_FILE, ...profile, 'config', '-q'], {
        cwd: REPO_ROOT,
        env: env(),
      });
      expect(result.exitCode, `${profile.join(' ')}: ${result.stderr}`).toBe(0);
    }
  });

  it('validates against the compose specification’s JSON schema (which rejects an unknown key)', () => {
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    // Draft 2019-09, written `http://…/schema#` (Ajv2019 knows it as `https://…/schema`), with
    // draft 4's `id` naming its parts (names only: nothing refers to them).
    const { $schema: draft, ...schema } = withoutIds(
      JSON.parse(readFileSync(COMPOSE_SPEC_SCHEMA, 'utf8')),
    ) as {
      $schema: string;
    };
    expect(draft).toMatch(/draft\/2019-09/);
    const validateCompose = ajv.compile(schema);
    // Validated as compose sees it: anchors merged and variables interpolated, minus the x- keys.
    const file = Object.fromEntries(Object.entries(compose.raw).filter(([key]) => !key.startsWith('x-')));
    expect(validateCompose(file), JSON.stringify(validateCompose.errors, null, 2)).toBe(true);
    const misspelt = structuredClone(file) as { services: Record<string, Record<string, unknown>> };
    misspelt.services['proxy'] = { ...misspelt.services['proxy'], healthcheks: {} };
    expect(validateCompose(misspelt)).toBe(false);
  });

  it('runs the four apps, two Redis servers and MongoDB by default; the observability tools only in their profile', () => {
    const byDefault = Object.values(compose.services)
      .filter((service) => service.profiles.length === 0)
      .map((service) => service.name)
      .sort();
    expect(byDefault).toEqual([
      'crathens',
      'lathens',
      'mongo',
      'proxy',
      'redis-cache',
      'redis-queue',
      'storage',
    ]);
    const observability = Object.values(compose.services)
      .filter((service) => service.profiles.includes('observability'))
      .map((service) => service.name)
      .sort();
    expect(observability).toEqual(['grafana', 'jaeger', 'otel-collector', 'prometheus']);
    expect(compose.services['mongo']?.image).toMatch(/^mongo:\d/);
  });

  it('keeps the queue Redis from evicting and lets the cache Redis evict', () => {
    const command = (name: string) => compose.services[name]?.command?.join(' ') ?? '';
    expect(command('redis-queue')).toMatch(/--maxmemory-policy noeviction\b/);
    expect(command('redis-queue')).toMatch(/--appendonly yes\b/);
    expect(command('redis-cache')).toMatch(/--maxmemory-policy allkeys-lru\b/);
    expect(command('redis-cache')).toMatch(/--maxmemory \d+mb\b/);
  });

  it('gives every default service a health check, and every dependency a condition', () => {
    for (const service of Object.values(compose.services).filter(
      (candidate) => candidate.profiles.length === 0,
    )) {
      expect(service.healthcheck, service.name).toBeDefined();
      for (const [dependency, condition] of Object.entries(service.dependsOn)) {
        expect(compose.services[dependency], `${service.name} depends on ${dependency}`).toBeDefined();
        expect(['service_healthy', 'service_started', 'service_completed_successfully']).toContain(condition);
      }
    }
  });

  it('keeps state only in named volumes that it declares', () => {
    const used = Object.values(compose.services).flatMap((service) =>
      service.mounts.filter((mount) => mount.type === 'volume').map((mount) => mount.source ?? ''),
    );
    expect(new Set(used)).toEqual(new Set(compose.volumes));
    for (const name of ['mongo', 'redis-queue']) {
      expect(
        compose.services[name]?.mounts.some((mount) => mount.type === 'volume'),
        name,
      ).toBe(true);
    }
    for (const service of Object.values(compose.services)) {
      for (const mount of service.mounts.filter((candidate) => candidate.type === 'bind')) {
        expect(existsSync(join(REPO_ROOT, mount.source ?? '')), `${service.name}: ${mount.source}`).toBe(
          true,
        );
        expect(mount.readOnly, `${service.name}: ${mount.source}`).toBe(true);
      }
    }
  });

  it('reads ports as compose does: [host_ip:]published:target[/protocol], the host address kept', () => {
    expect(['3000', '3000:3000', '127.0.0.1:7070:7070/tcp', '[::1]:8080:80'].map(publishedPort)).toEqual([
      { hostIp: undefined, published: 3000, target: 3000 },
      { hostIp: undefined, published: 3000, target: 3000 },
      { hostIp: '127.0.0.1', published: 7070, target: 7070 },
      { hostIp: '[::1]', published: 8080, target: 80 },
    ]);
    expect(() => publishedPort('3000-3005:3000-3005')).toThrow(/is not \[host_ip:\]published:target/);
  });

  it('interpolates ${VAR:-default} as compose does', () => {
    expect(interpolate('${A:-x}/${B-y}/${C}/$$', { A: '', B: '' })).toBe('x//' + '/$');
    expect(interpolate({ k: ['${A:-x}'] }, { A: 'set' })).toEqual({ k: ['set'] });
  });
});

describe('the observability profile’s configuration', () => {
  let compose: ComposeFile;

  beforeAll(() => {
    compose = readComposeFile(COMPOSE_FILE);
  });

  it('passes promtool check config (with the alert rules it loads)', async () => {
    const result = await runCommand('promtool', ['check', 'config', 'deploy/prometheus/prometheus.yml'], {
      cwd: REPO_ROOT,
      env: env(),
    });
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
  });

  it('sends every pipeline of the OpenTelemetry collector from a receiver it defines to an exporter it defines', () => {
    const config = parse(
      readFileSync(join(REPO_ROOT, 'deploy', 'otel-collector', 'config.yaml'), 'utf8'),
    ) as {
      receivers: Record<string, unknown>;
      processors: Record<string, unknown>;
      exporters: Record<string, { endpoint?: string }>;
      service: {
        pipelines: Record<string, { receivers: string[]; processors?: string[]; exporters: string[] }>;
      };
    };
    const traces = config.service.pipelines['traces'];
    expect(traces).toBeDefined();
    for (const pipeline of Object.values(config.service.pipelines)) {
      for (const name of pipeline.receivers) expect(config.receivers).toHaveProperty([name]);
      for (const name of pipeline.processors ?? []) expect(config.processors).toHaveProperty([name]);
      for (const name of pipeline.exporters) expect(config.exporters).toHaveProperty([name]);
    }
    // Traces go to the Jaeger service of the same compose file, over OTLP/gRPC.
    const endpoints = traces?.exporters.map((name) => config.exporters[name]?.endpoint ?? '') ?? [];
    expect(endpoints).toContain('jaeger:4317');
    expect(compose.services['jaeger']).toBeDefined();
    // The apps' documented endpoint is the collector's OTLP/HTTP receiver.
    expect(readFileSync(COMPOSE_FILE, 'utf8')).toContain(
      'OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4318',
    );
    expect(JSON.stringify(config.receivers)).toContain('0.0.0.0:4318');
  });

  it('provisions Grafana with Prometheus and the dashboards directory compose mounts', () => {
    const grafana = compose.services['grafana'];
    const mount = (source: string) =>
      grafana?.mounts.find((candidate) => candidate.source === source)?.target;
    const provider = parse(
      readFileSync(
        join(REPO_ROOT, 'deploy', 'grafana', 'provisioning', 'dashboards', 'modproxy.yaml'),
        'utf8',
      ),
    ) as { providers: Array<{ options: { path: string } }> };
    expect(provider.providers[0]?.options.path).toBe(mount('./deploy/grafana/dashboards'));
    expect(mount('./deploy/grafana/provisioning')).toBe('/etc/grafana/provisioning');
    const dashboards = readdirSync(join(REPO_ROOT, 'deploy', 'grafana', 'dashboards')).filter((name) =>
      name.endsWith('.json'),
    );
    expect(dashboards.length).toBeGreaterThan(0);
    for (const name of dashboards) {
      const dashboard = JSON.parse(
        readFileSync(join(REPO_ROOT, 'deploy', 'grafana', 'dashboards', name), 'utf8'),
      ) as {
        uid?: string;
      };
      expect(dashboard.uid, name).toBeTruthy();
    }
    const datasources = parse(
      readFileSync(
        join(REPO_ROOT, 'deploy', 'grafana', 'provisioning', 'datasources', 'prometheus.yaml'),
        'utf8',
      ),
    ) as { datasources: Array<{ type: string; url: string }> };
    const prometheus = datasources.datasources.find((source) => source.type === 'prometheus');
    expect(prometheus?.url).toBe('http://prometheus:9090');
  });
});
