import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { isSecretVariable } from '@modproxy/config';
import {
  type ConfigSchema,
  listeningPorts,
  loadConfigSchemas,
  METRICS_PORT_VARIABLE,
  parseAppConfig,
  unreadVariables,
} from './app-configs';
import { type ComposeFile, readComposeFile } from './compose-model';
import { appOfImage, STOCK_IMAGE_PORTS, stockImageKind } from './container-spec';
import { DockerfileModel } from './dockerfile-model';
import {
  containerPortNumber,
  type K8sContainer,
  type K8sObject,
  RenderedObjects,
  type ServicePort,
} from './k8s-model';
import { allowedSources } from './network-policies';
import {
  APPS,
  type AppName,
  COMPOSE_FILE,
  DOCKERFILE,
  K8S_DIR,
  KUSTOMIZATIONS,
  REPO_ROOT,
} from './repo-paths';

/** One app as one deployment file runs it. */
interface AppRun {
  where: string;
  app: AppName;
  /** What the file sets. */
  fileEnv: Record<string, string>;
  /** What the container starts with: the image's environment, then the file's. */
  env: Record<string, string>;
}

let schemas: Record<AppName, ConfigSchema>;
let dockerfile: DockerfileModel;
let compose: ComposeFile;
const k8s = {} as Record<'dev' | 'prod', RenderedObjects>;
const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

/** The Secret an operator makes from k8s/secret.template.yaml (its tokens and passwords filled in; the placeholders are too short to start with). */
function secretFromTemplate(namespace: string): K8sObject {
  const template = parse(readFileSync(join(K8S_DIR, 'secret.template.yaml'), 'utf8')) as K8sObject & {
    stringData: Record<string, string>;
  };
  const stringData = Object.fromEntries(
    Object.entries(template.stringData).map(([key, value]) => [
      key,
      key.endsWith('-token') || key.endsWith('-password') ? 'f'.repeat(64) : value,
    ]),
  );
  return { ...template, metadata: { ...template.metadata, namespace }, stringData };
}

function appContainers(rendered: RenderedObjects): Array<{ app: AppName; container: K8sContainer }> {
  return rendered.workloads().flatMap((workload) =>
    workload.pod.containers.flatMap((container) => {
      const app = appOfImage(container.image, APPS);
      return app ? [{ app, container }] : [];
    }),
  );
}

function runs(): AppRun[] {
  const all: AppRun[] = [];
  for (const service of Object.values(compose.services)) {
    const app = APPS.find((candidate) => candidate === service.buildTarget);
    if (!app) continue;
    all.push({
      where: `docker-compose.yml ${service.name}`,
      app,
      fileEnv: service.environment,
      env: { ...dockerfile.image(app).env, ...service.environment },
    });
  }
  for (const overlay of ['dev', 'prod'] as const) {
    for (const { app, container } of appContainers(k8s[overlay])) {
      const fileEnv = k8s[overlay].containerEnv(container);
      all.push({
        where: `k8s ${overlay} ${container.name}`,
        app,
        fileEnv,
        env: { ...dockerfile.image(app).env, ...fileEnv },
      });
    }
  }
  return all;
}

beforeAll(async () => {
  schemas = await loadConfigSchemas();
  dockerfile = DockerfileModel.read(DOCKERFILE);
  compose = readComposeFile(COMPOSE_FILE);
  k8s.dev = await RenderedObjects.render(KUSTOMIZATIONS.dev);
  const prod = await RenderedObjects.render(KUSTOMIZATIONS.prod);
  k8s.prod = new RenderedObjects([...prod.objects, secretFromTemplate('modproxy')]);
});

describe('every container', () => {
  it('in Kubernetes: non-root, read-only root, no capabilities, RuntimeDefault seccomp, limits and all three probes', () => {
    for (const overlay of ['dev', 'prod'] as const) {
      for (const workload of k8s[overlay].workloads()) {
        const where = `${overlay} ${workload.name}`;
        const pod = workload.pod.securityContext ?? {};
        expect(pod['runAsNonRoot'], where).toBe(true);
        expect(Number(pod['runAsUser']), where).toBeGreaterThan(0);
        expect(pod['seccompProfile'], where).toEqual({ type: 'RuntimeDefault' });
        expect(workload.pod.enableServiceLinks, where).toBe(false);
        for (const container of workload.pod.containers) {
          const security = container.securityContext ?? {};
          expect(security['runAsNonRoot'], where).toBe(true);
          expect(security['readOnlyRootFilesystem'], where).toBe(true);
          expect(security['allowPrivilegeEscalation'], where).toBe(false);
          expect(security['capabilities'], where).toEqual({ drop: ['ALL'] });
          expect(container.resources?.limits, where).toEqual(
            expect.objectContaining({ cpu: expect.any(String), memory: expect.any(String) }),
          );
          expect(container.resources?.requests, where).toEqual(
            expect.objectContaining({ cpu: expect.any(String), memory: expect.any(String) }),
          );
          for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe'] as const) {
            expect(container[probe], `${where} ${probe}`).toBeDefined();
          }
        }
      }
    }
  });

  it('in Kubernetes: readiness over HTTP for the proxy and crathens, over gRPC health for storage and lathens; app pods spread over nodes and zones', () => {
    for (const overlay of ['dev', 'prod'] as const) {
      for (const { app, container } of appContainers(k8s[overlay])) {
        const readiness = container.readinessProbe;
        if (app === 'proxy' || app === 'crathens')
          expect(readiness?.httpGet?.path, `${overlay} ${app}`).toBe('/readyz');
        else expect(readiness?.grpc, `${overlay} ${app}`).toBeDefined();
        expect(container.livenessProbe?.httpGet?.path, `${overlay} ${app}`).toBe('/healthz');
      }
      for (const workload of k8s[overlay].ofKind('Deployment')) {
        const spread = (
          workload['spec'] as {
            template: { spec: { topologySpreadConstraints?: Array<{ topologyKey: string }> } };
          }
        ).template.spec.topologySpreadConstraints;
        expect(spread?.map((constraint) => constraint.topologyKey).sort(), workload.metadata.name).toEqual([
          'kubernetes.io/hostname',
          'topology.kubernetes.io/zone',
        ]);
      }
    }
  });

  it('in docker-compose.yml: a non-root user, a read-only root, no capabilities, and a health check', () => {
    for (const service of Object.values(compose.services).filter(
      (candidate) => candidate.profiles.length === 0,
    )) {
      expect(service.user, service.name).toMatch(/^[1-9]\d*:[1-9]\d*$/);
      expect(service.readOnly, service.name).toBe(true);
      expect(service.capDrop, service.name).toEqual(['ALL']);
      expect(service.healthcheck, service.name).toBeDefined();
    }
  });

  it('mounts compose’s named volumes of the apps on directories the image makes and gives to its user', () => {
    const runtime = dockerfile
      .stage('runtime')
      .instructions.filter((instruction) => instruction.getKeyword() === 'RUN')
      .map((instruction) => instruction.getArgumentsContent() ?? '')
      .join('\n');
    for (const service of Object.values(compose.services)) {
      const app = APPS.find((candidate) => candidate === service.buildTarget);
      if (!app) continue;
      const user = dockerfile.image(app).user;
      expect(runtime).toContain(`chown -R ${user}`);
      for (const mount of service.mounts.filter((candidate) => candidate.type === 'volume')) {
        expect(runtime, `${service.name}: ${mount.target}`).toMatch(
          new RegExp(`mkdir -p [^\\n]*${mount.target}(\\s|$)`),
        );
      }
    }
  });

  it('runs the same image per app in compose and in every overlay: modproxy/<app>:<package version>, built from its own target', () => {
    for (const app of APPS) {
      const image = `modproxy/${app}:${version}`;
      const services = Object.values(compose.services).filter((service) => service.buildTarget === app);
      expect(
        services.map((service) => service.image),
        app,
      ).toEqual([image]);
      for (const overlay of ['dev', 'prod'] as const) {
        expect(
          appContainers(k8s[overlay])
            .filter((entry) => entry.app === app)
            .map((entry) => entry.container.image),
          `${overlay} ${app}`,
        ).toEqual([image]);
      }
    }
  });
});

describe('variables', () => {
  it('every variable compose and Kubernetes give an app is one it reads (its schema, node, the tracing entry or the go command)', () => {
    const unread = runs().flatMap((run) =>
      unreadVariables(run.app, schemas[run.app], run.fileEnv).map((name) => `${run.where}: ${name}`),
    );
    expect(unread).toEqual([]);
    for (const app of APPS) {
      const image = dockerfile.image(app).env;
      expect(unreadVariables(app, schemas[app], image), `the ${app} image`).toEqual([]);
    }
  });

  it('every app’s configuration is complete and valid as each file gives it', () => {
    const problems = runs().flatMap((run) =>
      parseAppConfig(schemas[run.app], run.env).problems.map((problem) => `${run.where}: ${problem}`),
    );
    expect(problems).toEqual([]);
  });

  it('the checks bite: a misspelt name is unread, a missing required one is a problem naming it', () => {
    const proxy = runs().find((run) => run.where === 'docker-compose.yml proxy');
    expect(proxy).toBeDefined();
    const { STORAGE_GRPC_URL: url, ...rest } = proxy?.env ?? {};
    expect(unreadVariables('proxy', schemas.proxy, { ...rest, STORAGE_GRPC_ADDR: url ?? '' })).toEqual([
      'STORAGE_GRPC_ADDR',
    ]);
    expect(parseAppConfig(schemas.proxy, rest).problems).toEqual([
      'STORAGE_GRPC_URL: is required when STORAGE_TYPE=grpc',
    ]);
  });

  it('the Secret template has exactly the keys the overlays read, and its placeholders cannot start an app', () => {
    const template = parse(readFileSync(join(K8S_DIR, 'secret.template.yaml'), 'utf8')) as {
      stringData: Record<string, string>;
    };
    const referenced = new Set(
      appContainers(k8s.prod).flatMap(({ container }) =>
        (container.env ?? []).flatMap((variable) =>
          variable.valueFrom?.secretKeyRef ? [variable.valueFrom.secretKeyRef.key] : [],
        ),
      ),
    );
    expect(Object.keys(template.stringData).sort()).toEqual([...referenced].sort());
    const storage = runs().find((run) => run.where === 'k8s prod storage');
    const withPlaceholder = { ...storage?.env, STORAGE_TOKEN: template.stringData['storage-token'] ?? '' };
    expect(parseAppConfig(schemas.storage, withPlaceholder).problems).toEqual([
      'STORAGE_TOKEN: must be at least 16 characters',
    ]);
  });

  it('the cache Redis is lathens’ REDIS_URL; every QUEUE_REDIS_URL is the queue Redis (compose and dev)', () => {
    for (const run of runs().filter((candidate) => !candidate.where.startsWith('k8s prod'))) {
      if (run.app === 'lathens') expect(run.env['REDIS_URL'], run.where).toBe('redis://redis-cache:6379');
      if (run.app !== 'storage')
        expect(run.env['QUEUE_REDIS_URL'], run.where).toBe('redis://redis-queue:6379');
    }
    const args = (name: string) => k8s.dev.workload(name).pod.containers[0]?.args?.join(' ') ?? '';
    expect(args('redis-queue')).toMatch(/--maxmemory-policy noeviction\b/);
    expect(args('redis-cache')).toMatch(/--maxmemory-policy allkeys-lru\b/);
  });
});

describe('ports', () => {
  /** The ports each app listens on, as each file configures it. */
  const listening = (run: AppRun) =>
    [...listeningPorts(schemas[run.app], run.env).values()].sort((a, b) => a - b);

  it('each app listens on the same ports in compose, every overlay and the image (EXPOSE)', () => {
    for (const app of APPS) {
      const image = [...dockerfile.image(app).expose].sort((a, b) => a - b);
      for (const run of runs().filter((candidate) => candidate.app === app)) {
        expect(listening(run), run.where).toEqual(image);
      }
    }
  });

  it('in Kubernetes, container ports are the listening ports, and every Service and probe leads to one', () => {
    for (const overlay of ['dev', 'prod'] as const) {
      for (const workload of k8s[overlay].workloads()) {
        const [container] = workload.pod.containers;
        if (!container) continue;
        const app = appOfImage(container.image, APPS);
        const kind = stockImageKind(container.image);
        const ports = app
          ? [
              ...listeningPorts(schemas[app], {
                ...dockerfile.image(app).env,
                ...k8s[overlay].containerEnv(container),
              }).values(),
            ]
          : kind
            ? [STOCK_IMAGE_PORTS[kind]]
            : [];
        const where = `${overlay} ${workload.name}`;
        expect((container.ports ?? []).map((port) => port.containerPort).sort(), where).toEqual(ports.sort());
        for (const route of k8s[overlay].servicePortsOf(workload))
          expect(ports, `${where} Service ${route.service}`).toContain(route.containerPort);
        for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) {
          const port = probe?.httpGet?.port ?? probe?.grpc?.port;
          if (port !== undefined)
            expect(ports, `${where} probe`).toContain(containerPortNumber(container, port));
        }
      }
    }
  });

  it('every host:port a file names for a service is a port that service listens on', () => {
    const composePorts = new Map<string, number[]>();
    for (const service of Object.values(compose.services)) {
      const app = APPS.find((candidate) => candidate === service.buildTarget);
      const kind = stockImageKind(service.image);
      if (app)
        composePorts.set(service.name, [
          ...listeningPorts(schemas[app], { ...dockerfile.image(app).env, ...service.environment }).values(),
        ]);
      else if (kind) composePorts.set(service.name, [STOCK_IMAGE_PORTS[kind]]);
    }
    const servicePorts = (overlay: 'dev' | 'prod') =>
      new Map(
        k8s[overlay]
          .ofKind('Service')
          .map((service) => [
            service.metadata.name,
            (service['spec'] as { ports: Array<{ port: number }> }).ports.map((port) => port.port),
          ]),
      );
    const references: Array<{ where: string; host: string; port: number; ports: Map<string, number[]> }> = [];
    for (const run of runs()) {
      const ports = run.where.startsWith('docker-compose')
        ? composePorts
        : servicePorts(run.where.startsWith('k8s dev') ? 'dev' : 'prod');
      for (const [name, value] of Object.entries(run.fileEnv)) {
        for (const match of value.matchAll(/([a-z][-a-z0-9]*):(\d+)/g)) {
          if (ports.has(match[1] ?? ''))
            references.push({
              where: `${run.where} ${name}`,
              host: match[1] ?? '',
              port: Number(match[2]),
              ports,
            });
        }
      }
    }
    expect(references.length).toBeGreaterThan(10);
    for (const reference of references) {
      expect(
        reference.ports.get(reference.host),
        `${reference.where} names ${reference.host}:${reference.port}`,
      ).toContain(reference.port);
    }
  });

  it('health checks (image and compose) and the published port are the app’s own listening ports', () => {
    for (const app of APPS) {
      const image = dockerfile.image(app);
      const port = (url: string | undefined) => Number(new URL(url ?? 'http://x:0').port);
      expect([...listeningPorts(schemas[app], image.env).values()], `${app} image`).toContain(
        port(image.healthcheck?.[2]),
      );
      for (const service of Object.values(compose.services).filter(
        (candidate) => candidate.buildTarget === app,
      )) {
        const env = { ...image.env, ...service.environment };
        const ports = [...listeningPorts(schemas[app], env).values()];
        expect(ports, `${service.name} healthcheck`).toContain(port(service.healthcheck?.at(-1)));
        for (const published of service.ports)
          expect(ports, `${service.name} ports`).toContain(published.target);
      }
    }
    expect(compose.services['proxy']?.ports).toEqual([
      { hostIp: undefined, published: 3000, target: 3000 },
      { hostIp: '127.0.0.1', published: 7070, target: 7070 },
    ]);
  });

  it('Prometheus scrapes every app at the port that serves its /metrics', () => {
    const config = parse(readFileSync(join(REPO_ROOT, 'deploy', 'prometheus', 'prometheus.yml'), 'utf8')) as {
      scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }>;
    };
    const targets = config.scrape_configs.flatMap((job) =>
      job.static_configs.flatMap((group) => group.targets),
    );
    for (const service of Object.values(compose.services)) {
      const app = APPS.find((candidate) => candidate === service.buildTarget);
      if (!app) continue;
      const env = { ...dockerfile.image(app).env, ...service.environment };
      const port = listeningPorts(schemas[app], env).get(METRICS_PORT_VARIABLE[app]);
      expect(targets, service.name).toContain(`${service.name}:${port}`);
    }
  });
});

describe('NetworkPolicies (dev, with Redis and MongoDB in the namespace)', () => {
  const sources = (name: string, port: number) => allowedSources(k8s.dev, k8s.dev.workload(name), port);

  it('let only the proxy, crathens and lathens reach storage’s gRPC port', () => {
    expect(sources('storage', 50051)).toEqual({
      anyone: false,
      workloads: ['crathens', 'lathens', 'proxy'],
      outside: [],
    });
  });

  it('let only the apps reach Redis, and only the storage service reach MongoDB', () => {
    for (const redis of ['redis-queue', 'redis-cache']) {
      expect(sources(redis, 6379), redis).toEqual({
        anyone: false,
        workloads: ['crathens', 'lathens', 'proxy', 'storage'],
        outside: [],
      });
    }
    expect(sources('mongo', 27017)).toEqual({ anyone: false, workloads: ['storage'], outside: [] });
  });

  it('let anyone reach the proxy’s GOPROXY port, and nothing else reach crathens or lathens but the apps, the monitoring namespace and (crathens’ admin port) the operators’ namespace', () => {
    expect(sources('proxy', 3000).anyone).toBe(true);
    expect(sources('crathens', 7073)).toEqual({
      anyone: false,
      workloads: [],
      outside: [
        expect.stringContaining('modproxy.io/monitoring'),
        expect.stringContaining('modproxy.io/admin'),
      ],
    });
    expect(sources('lathens', 7071)).toEqual({
      anyone: false,
      workloads: ['crathens', 'proxy'],
      outside: [],
    });
  });

  it('let only the operators’ namespace reach the proxy’s admin port: no app, no Go client, not the ingress controller', () => {
    expect(sources('proxy', 7070)).toEqual({
      anyone: false,
      workloads: [],
      outside: [expect.stringContaining('modproxy.io/admin')],
    });
  });
});

/** The apps with an admin port an operator uses: the proxy's status page and purge, crathens' queue dashboard. */
const ADMIN_APPS: ReadonlySet<AppName> = new Set(['proxy', 'crathens']);

/** Where each Ingress path leads: the workload and container port behind its Service port. */
function ingressTargets(rendered: RenderedObjects): Array<{ workload: string; containerPort: number }> {
  const targets: Array<{ workload: string; containerPort: number }> = [];
  for (const ingress of rendered.ofKind('Ingress')) {
    const spec = ingress['spec'] as {
      rules?: Array<{
        http?: {
          paths: Array<{ backend: { service?: { name: string; port: { name?: string; number?: number } } } }>;
        };
      }>;
    };
    for (const path of (spec.rules ?? []).flatMap((rule) => rule.http?.paths ?? [])) {
      const backend = path.backend.service;
      if (!backend) continue;
      const service = rendered.find('Service', backend.name);
      const port = ((service?.['spec'] as { ports?: ServicePort[] } | undefined)?.ports ?? []).find(
        (candidate) => candidate.name === backend.port.name || candidate.port === backend.port.number,
      );
      for (const workload of rendered.workloads()) {
        for (const route of rendered.servicePortsOf(workload)) {
          if (route.service === backend.name && route.port === port?.port)
            targets.push({ workload: workload.name, containerPort: route.containerPort });
        }
      }
    }
  }
  return targets;
}

describe('admin ports (the proxy’s status page and purge, crathens’ queue dashboard)', () => {
  it('are on, in compose and every overlay: a port on every interface of the container, and credentials', () => {
    const admins = runs().filter((run) => ADMIN_APPS.has(run.app));
    expect(admins.map((run) => run.where).sort()).toEqual([
      'docker-compose.yml crathens',
      'docker-compose.yml proxy',
      'k8s dev crathens',
      'k8s dev proxy',
      'k8s prod crathens',
      'k8s prod proxy',
    ]);
    for (const run of admins) {
      const { config } = parseAppConfig(schemas[run.app], run.env);
      expect(config['ADMIN_PORT'], run.where).toEqual(expect.any(Number));
      // Reached through a published port or a Service, never from inside the container alone.
      expect(config['ADMIN_HOST'], run.where).toBe('0.0.0.0');
      expect(config['ADMIN_PASSWORD'], run.where).toEqual(expect.any(String));
      expect(config['ADMIN_TOKEN'], run.where).toEqual(expect.any(String));
      expect(config['ADMIN_ALLOW_UNAUTHENTICATED'], run.where).toBe(false);
    }
  });

  it('in docker-compose.yml: published on the host’s loopback only; the GOPROXY port is the one port open to every interface', () => {
    const published: string[] = [];
    for (const service of Object.values(compose.services)) {
      const app = APPS.find((candidate) => candidate === service.buildTarget);
      if (!app) continue;
      const ports = listeningPorts(schemas[app], { ...dockerfile.image(app).env, ...service.environment });
      for (const port of service.ports) {
        const bound = port.hostIp ?? '*';
        const variable = [...ports].find(([, number]) => number === port.target)?.[0];
        published.push(`${service.name} ${bound}:${port.published} → ${variable ?? port.target}`);
      }
    }
    expect(published.sort()).toEqual([
      'crathens 127.0.0.1:7073 → ADMIN_PORT',
      'proxy *:3000 → PORT',
      'proxy 127.0.0.1:7070 → ADMIN_PORT',
    ]);
  });

  it('in Kubernetes: reached by ClusterIP Services only, never by the Ingress, which leads to the GOPROXY port alone', () => {
    for (const overlay of ['dev', 'prod'] as const) {
      const rendered = k8s[overlay];
      expect(ingressTargets(rendered), overlay).toEqual([{ workload: 'proxy', containerPort: 3000 }]);
      for (const workload of rendered.workloads()) {
        const [container] = workload.pod.containers;
        const app = appOfImage(container?.image, APPS);
        if (!container || !app || !ADMIN_APPS.has(app)) continue;
        const env = { ...dockerfile.image(app).env, ...rendered.containerEnv(container) };
        const admin = listeningPorts(schemas[app], env).get('ADMIN_PORT');
        const routes = rendered.servicePortsOf(workload).filter((route) => route.containerPort === admin);
        expect(routes.length, `${overlay} ${app}`).toBeGreaterThan(0);
        for (const route of routes) {
          const type = (rendered.find('Service', route.service)?.['spec'] as { type?: string }).type;
          expect(type ?? 'ClusterIP', `${overlay} Service ${route.service}`).toBe('ClusterIP');
        }
      }
      const nodePorts = rendered
        .ofKind('Service')
        .filter((service) =>
          ['NodePort', 'LoadBalancer'].includes((service['spec'] as { type?: string }).type ?? ''),
        );
      expect(nodePorts, overlay).toEqual([]);
    }
  });

  it('in Kubernetes: every secret variable (ADMIN_PASSWORD, ADMIN_TOKEN, the tokens) comes from the Secret, none from a ConfigMap or the manifest', () => {
    for (const overlay of ['dev', 'prod'] as const) {
      for (const configMap of k8s[overlay].ofKind('ConfigMap')) {
        const keys = Object.keys((configMap['data'] as Record<string, string> | undefined) ?? {});
        expect(keys.filter(isSecretVariable), `${overlay} ${configMap.metadata.name}`).toEqual([]);
      }
      for (const { app, container } of appContainers(k8s[overlay])) {
        const env = k8s[overlay].containerEnv(container);
        const secrets = Object.keys(env).filter(isSecretVariable);
        if (ADMIN_APPS.has(app))
          expect(secrets, `${overlay} ${app}`).toEqual(
            expect.arrayContaining(['ADMIN_PASSWORD', 'ADMIN_TOKEN']),
          );
        for (const name of secrets) {
          const variable = (container.env ?? []).find((candidate) => candidate.name === name);
          // The dev overlay's generated Secret carries a hash in its name.
          expect(variable?.valueFrom?.secretKeyRef?.name, `${overlay} ${app} ${name}`).toMatch(
            /^modproxy-secrets(-[a-z0-9]{10})?$/,
          );
        }
      }
    }
  });
});
