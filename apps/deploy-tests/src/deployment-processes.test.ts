import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrpcStorage } from '@modproxy/storage-grpc';
import {
  createFixtureModules,
  createGoWorkspace,
  createTempDir,
  type FixtureModule,
  type FixtureModules,
  removeDir,
  runCommand,
} from '@modproxy/testing';
import { type ConfigSchema, loadConfigSchemas } from './app-configs';
import { composeContainers } from './compose-containers';
import { readComposeFile } from './compose-model';
import { DockerfileModel } from './dockerfile-model';
import { k8sContainers } from './k8s-containers';
import { RenderedObjects } from './k8s-model';
import { LocalDeployment } from './local-deployment';
import { type AppName, COMPOSE_FILE, DOCKERFILE, KUSTOMIZATIONS, REPO_ROOT } from './repo-paths';

/**
 * docker-compose.yml and the rendered dev overlay, run as local processes exactly as the files
 * say (see LocalDeployment for the translation to this machine), and the real go command
 * building the fixture program through them: the proxy hands its misses to crathens through
 * the queue Redis, crathens fetches from the fixture git repositories and saves through the
 * storage service into MongoDB's wire protocol (FerretDB), lathens answers list and latest
 * from the cache Redis. A misspelt variable, a wrong port or a wrong command in either file
 * stops this test.
 */
describe('the deployment files run as processes', () => {
  let fixtures: FixtureModules;
  let dockerfile: DockerfileModel;
  let schemas: Record<AppName, ConfigSchema>;
  const cleanup: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    dockerfile = DockerfileModel.read(DOCKERFILE);
    schemas = await loadConfigSchemas();
  });

  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
    await fixtures?.close();
  });

  const program = (): FixtureModule[] => [
    fixtures.hello,
    fixtures.majorV2,
    fixtures.mixedCase,
    fixtures.legacy,
    fixtures.nested,
    fixtures.nestedSub,
    fixtures.untagged,
  ];

  /**
   * What a Go developer does: `GOPROXY=<url> go build` of a program whose go.mod requires every
   * fixture module, and the program's output. (Not `go get <package>@<version>`: it also asks
   * for every shorter prefix of the path, such as the bare host, and through the queue each of
   * those is retried with backoff before it fails.)
   */
  async function buildThrough(goproxy: string): Promise<string[]> {
    const gopath = await createTempDir('deploy-client-');
    cleanup.push(() => removeDir(gopath));
    // The fixtures' go settings minus the git config that reaches the repositories: modules
    // come only through the deployment.
    const { GIT_CONFIG_GLOBAL: _unreachable, ...base } = fixtures.env;
    const env = { ...base, GOPROXY: goproxy, GOPATH: gopath, GOMODCACHE: join(gopath, 'pkg', 'mod') };
    const workspace = await createGoWorkspace({
      env,
      imports: program().map(({ importPath, func }) => ({ importPath, func })),
      requires: Object.fromEntries(program().map((fixture) => [fixture.path, fixture.latest])),
    });
    cleanup.push(() => workspace.remove());
    const build = await workspace.go(['build', '-mod=mod', '-o', 'program', '.']);
    expect(build.exitCode, build.stderr).toBe(0);
    const run = await runCommand(join(workspace.dir, 'program'), [], { env });
    expect(run.exitCode, run.stderr).toBe(0);
    return run.stdout.trim().split('\n');
  }

  /** The versions the storage service holds, read with the token the files give it. */
  async function storedVersions(
    deployment: LocalDeployment,
    storage: string,
    grpcPort: number,
  ): Promise<string[]> {
    const client = new GrpcStorage({
      url: `127.0.0.1:${deployment.resolve(storage, grpcPort)}`,
      token: deployment.container(storage).spec.env['STORAGE_TOKEN'] ?? '',
    });
    try {
      const page = await client.catalog({ pageSize: 1000 });
      return page.entries.map((entry) => `${entry.module}@${entry.version}`);
    } finally {
      await client.close();
    }
  }

  /** FetchVersion jobs crathens completed (its /metrics): the proxy handed its misses over through the queue. */
  async function fetchJobsCompleted(
    deployment: LocalDeployment,
    crathens: string,
    adminPort: number,
  ): Promise<number> {
    const text = await (
      await fetch(`http://127.0.0.1:${deployment.resolve(crathens, adminPort)}/metrics`)
    ).text();
    return text
      .split('\n')
      .filter(
        (line) =>
          line.startsWith('crathens_job_attempts_total{') &&
          line.includes('name="FetchVersion"') &&
          line.includes('outcome="completed"'),
      )
      .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
  }

  /** The scrape targets of deploy/prometheus/prometheus.yml, as [compose service, port]. */
  const prometheusTargets = (): Array<[string, number]> => {
    const config = parse(readFileSync(join(REPO_ROOT, 'deploy', 'prometheus', 'prometheus.yml'), 'utf8')) as {
      scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }>;
    };
    return config.scrape_configs
      .flatMap((job) => job.static_configs.flatMap((group) => group.targets))
      .map((target) => [target.split(':')[0] ?? '', Number(target.split(':')[1])]);
  };

  /**
   * The admin ports as an operator reaches them (`proxyAdmin`, `crathensAdmin`: where the
   * files publish or route them), with the credentials the files give: the proxy's status page
   * answers HTTP Basic and the bearer token and lists a version the build fetched through the
   * queue, its purge deletes that version from storage, and crathens' queue dashboard answers;
   * without credentials, or with a wrong token, each refuses (401) and changes nothing.
   */
  async function expectAdminPorts(
    deployment: LocalDeployment,
    proxyAdmin: number,
    crathensAdmin: number,
  ): Promise<void> {
    const credentials = (container: string) => {
      const env = deployment.container(container).spec.env;
      const { ADMIN_PASSWORD: password, ADMIN_TOKEN: token } = env;
      expect(password, `${container} ADMIN_PASSWORD`).toBeTruthy();
      expect(token, `${container} ADMIN_TOKEN`).toBeTruthy();
      const basic = Buffer.from(`${env['ADMIN_USER'] ?? 'admin'}:${password ?? ''}`).toString('base64');
      return { basic: `Basic ${basic}`, bearer: `Bearer ${token ?? ''}` };
    };
    const get = (url: string, authorization?: string) =>
      fetch(url, authorization ? { headers: { authorization } } : {});

    const proxy = credentials('proxy');
    const status = `http://127.0.0.1:${proxyAdmin}/`;
    const refused = await get(status);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    expect((await get(status, 'Bearer not-the-admin-token-0123456789')).status).toBe(401);
    const { hello } = fixtures;
    for (const authorization of [proxy.bearer, proxy.basic]) {
      const page = await get(status, authorization);
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain('modproxy proxy status');
      // Read from the queue Redis: crathens fetched it, this replica only queued it.
      const row = html
        .split('<tr ')
        .find((candidate) =>
          candidate.startsWith(`data-module="${hello.path}" data-version="${hello.latest}"`),
        );
      expect(row, html).toMatch(/<td>fetch queue<\/td>/);
    }

    const stored = `${hello.path}@${hello.latest}`;
    const purge = (authorization?: string) =>
      fetch(`http://127.0.0.1:${proxyAdmin}/modules/${hello.escapedPath}/@v/${hello.latest}`, {
        method: 'DELETE',
        ...(authorization ? { headers: { authorization } } : {}),
      });
    expect((await purge()).status).toBe(401);
    expect(await storedVersions(deployment, 'storage', 50051)).toContain(stored);
    const purged = await purge(proxy.bearer);
    expect(purged.status, await purged.text()).toBe(200);
    expect(await storedVersions(deployment, 'storage', 50051)).not.toContain(stored);

    const crathens = credentials('crathens');
    const board = `http://127.0.0.1:${crathensAdmin}/admin/queues`;
    expect((await get(board)).status).toBe(401);
    for (const authorization of [crathens.basic, crathens.bearer]) {
      const page = await get(board, authorization);
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<html/i);
    }
  }

  const expectedOutput = () => program().map((fixture) => fixture.byVersion[fixture.latest]?.returns);
  const expectedStored = () => program().map((fixture) => `${fixture.path}@${fixture.latest}`);

  function composeDeployment(file = COMPOSE_FILE, readyTimeoutMs?: number): Promise<LocalDeployment> {
    const { containers, backing } = composeContainers(readComposeFile(file), dockerfile);
    return LocalDeployment.start({
      dockerfile,
      schemas,
      containers,
      backing,
      extraEnv: fixtures.directEnv,
      ...(readyTimeoutMs ? { readyTimeoutMs } : {}),
    });
  }

  function k8sDeployment(rendered: RenderedObjects, readyTimeoutMs?: number): Promise<LocalDeployment> {
    const { containers, backing, routes, namespace } = k8sContainers(rendered, dockerfile);
    return LocalDeployment.start({
      dockerfile,
      schemas,
      containers,
      backing,
      routes,
      ...(namespace ? { namespace } : {}),
      extraEnv: fixtures.directEnv,
      ...(readyTimeoutMs ? { readyTimeoutMs } : {}),
    });
  }

  /** docker-compose.yml with one edit, as an operator's typo would make it. */
  function editedComposeFile(from: string, to: string): string {
    const text = readFileSync(COMPOSE_FILE, 'utf8');
    expect(text).toContain(from);
    const dir = join(fixtures.root, `compose-${Math.random().toString(36).slice(2)}`);
    const path = `${dir}.yml`;
    writeFileSync(path, text.replace(from, to));
    return path;
  }

  it('docker compose up: GOPROXY=http://localhost:<published port> go build works, crathens fetched every version through the queue, storage has them; the admin ports published on loopback answer their credentials and refuse without', async () => {
    const compose = readComposeFile(COMPOSE_FILE);
    const published = compose.services['proxy']?.ports.find((port) => port.hostIp === undefined);
    expect(published).toBeDefined();
    // What this machine's operator opens: the admin ports compose binds to the host's loopback.
    const adminPort = (service: string) => {
      const port = compose.services[service]?.ports.find((candidate) => candidate.hostIp === '127.0.0.1');
      expect(port, `${service}'s admin port on 127.0.0.1`).toBeDefined();
      expect(port?.target).toBe(Number(compose.services[service]?.environment['ADMIN_PORT']));
      return port?.target ?? 0;
    };
    const deployment = await composeDeployment();
    try {
      const url = `http://127.0.0.1:${deployment.resolve('proxy', published?.target ?? 0)}`;
      expect(await buildThrough(url)).toEqual(expectedOutput());
      expect(await storedVersions(deployment, 'storage', 50051)).toEqual(
        expect.arrayContaining(expectedStored()),
      );
      expect(await fetchJobsCompleted(deployment, 'crathens', 7073)).toBeGreaterThanOrEqual(
        expectedStored().length,
      );
      // What the observability profile's Prometheus scrapes answers, for every app service.
      for (const target of prometheusTargets().filter(([host]) => deployment.containers.has(host))) {
        const [host, port] = target;
        const metrics = await fetch(`http://127.0.0.1:${deployment.resolve(host, port)}/metrics`);
        expect(metrics.status, `${host}:${port}`).toBe(200);
        expect(await metrics.text(), `${host}:${port}`).toMatch(/^# HELP /m);
      }
      await expectAdminPorts(
        deployment,
        deployment.resolve('proxy', adminPort('proxy')),
        deployment.resolve('crathens', adminPort('crathens')),
      );
    } finally {
      await deployment.stop();
    }
  }, 240_000);

  it('kubectl apply -k k8s/overlays/dev: the go command builds through the Ingress backend, crathens fetched every version, storage has them; the admin ports behind their Services answer the Secret’s credentials and refuse without', async () => {
    const rendered = await RenderedObjects.render(KUSTOMIZATIONS.dev);
    const ingress = rendered.ofKind('Ingress')[0];
    const backend = (
      ingress?.['spec'] as {
        rules: Array<{
          http: {
            paths: Array<{
              backend: { service: { name: string; port: { name?: string; number?: number } } };
            }>;
          };
        }>;
      }
    ).rules[0]?.http.paths[0]?.backend.service;
    expect(backend).toBeDefined();
    const service = rendered.find('Service', backend?.name ?? '');
    const servicePort = (service?.['spec'] as { ports: Array<{ name?: string; port: number }> }).ports.find(
      (port) => port.name === backend?.port.name || port.port === backend?.port.number,
    );
    expect(servicePort).toBeDefined();
    const deployment = await k8sDeployment(rendered);
    try {
      const url = `http://127.0.0.1:${deployment.resolve(backend?.name ?? '', servicePort?.port ?? 0)}`;
      expect(await buildThrough(url)).toEqual(expectedOutput());
      expect(await storedVersions(deployment, 'storage', 50051)).toEqual(
        expect.arrayContaining(expectedStored()),
      );
      expect(await fetchJobsCompleted(deployment, 'crathens', 7073)).toBeGreaterThanOrEqual(
        expectedStored().length,
      );
      // The Service an operator port-forwards to (not the Ingress' one) for each admin port.
      const adminService = (name: string) => {
        const admin = Number(deployment.container(name).spec.env['ADMIN_PORT']);
        const route = rendered
          .servicePortsOf(rendered.workload(name))
          .find((candidate) => candidate.containerPort === admin);
        expect(route, `a Service for ${name}'s admin port ${admin}`).toBeDefined();
        expect(route?.service).not.toBe(backend?.name);
        return deployment.resolve(route?.service ?? '', route?.port ?? 0);
      };
      await expectAdminPorts(deployment, adminService('proxy'), adminService('crathens'));
    } finally {
      await deployment.stop();
    }
  }, 240_000);

  it('a misspelt variable in docker-compose.yml stops the deployment, naming the variable it lacks', async () => {
    const file = editedComposeFile(
      '  STORAGE_GRPC_URL: storage:50051\n',
      '  STORAGE_GRPC_ADDR: storage:50051\n',
    );
    await expect(composeDeployment(file)).rejects.toThrow(
      /STORAGE_GRPC_URL: is required when STORAGE_TYPE=grpc/,
    );
  }, 120_000);

  it('a wrong command in docker-compose.yml stops the deployment', async () => {
    const file = editedComposeFile(
      '    build: { context: ., target: crathens }\n',
      "    build: { context: ., target: crathens }\n    command: ['node', '/app/dist/apps/crathens/index.js']\n",
    );
    await expect(composeDeployment(file)).rejects.toThrow(/crathens (did not start|exited)[\s\S]*index\.js/);
  }, 120_000);

  it('a port in the dev overlay that nothing listens on stops the deployment, naming it', async () => {
    const rendered = await RenderedObjects.render(KUSTOMIZATIONS.dev);
    const config = rendered
      .ofKind('ConfigMap')
      .find((object) => object.metadata.name.startsWith('lathens-config'));
    (config?.['data'] as Record<string, string>)['STORAGE_GRPC_URL'] = 'storage:50052';
    await expect(k8sDeployment(rendered)).rejects.toThrow(
      /STORAGE_GRPC_URL=storage:50052: storage:50052 leads nowhere/,
    );
  }, 120_000);

  it('a probe of the dev overlay on a path the app does not serve keeps the deployment from becoming ready', async () => {
    const rendered = await RenderedObjects.render(KUSTOMIZATIONS.dev);
    const crathens = rendered.workload('crathens').pod.containers[0];
    if (crathens?.readinessProbe?.httpGet) crathens.readinessProbe.httpGet.path = '/ready';
    await expect(k8sDeployment(rendered, 10_000)).rejects.toThrow(/crathens passes GET :7073\/ready/);
  }, 120_000);
});
