import { posix } from 'node:path';
import { ensureFerretDb, type FerretDbServer, startFerretDb } from '@modproxy/storage-mongo/testing';
import {
  type AppProcess,
  type RedisServer,
  startAppProcess,
  startRedisServer,
  waitUntil,
} from '@modproxy/testing';
import { AddressBook } from './address-book';
import { type ConfigSchema, listeningPorts } from './app-configs';
import { ContainerSandbox } from './container-sandbox';
import type { BackingServiceSpec, ContainerSpec } from './container-spec';
import type { DockerfileModel } from './dockerfile-model';
import { commandCheck, grpcCheck, type HealthCheck, httpCheck } from './health-check';
import type { AppName } from './repo-paths';

export interface LocalDeploymentOptions {
  dockerfile: DockerfileModel;
  schemas: Record<AppName, ConfigSchema>;
  containers: ContainerSpec[];
  backing: BackingServiceSpec[];
  /**
   * Names the files route to containers besides the containers' own (Kubernetes Services):
   * `host:port` → the owner's container port.
   */
  routes?: Array<{ host: string; port: number; owner: string; containerPort: number }>;
  /** The Kubernetes namespace, so `storage.<namespace>.svc` resolves too. */
  namespace?: string;
  /** What the test adds to every app's environment: the fixtures' go settings (git config, no checksum database). */
  extraEnv: Record<string, string>;
  /** A deadline for a slow machine for each container to become ready. @default 90000 */
  readyTimeoutMs?: number;
}

/** A running container: its process and where it lives here. */
export interface LocalContainer {
  spec: ContainerSpec;
  process: AppProcess;
  sandbox: ContainerSandbox;
  /** The environment it was started with (after the translation to this machine). */
  env: Record<string, string>;
  imageFiles: string[];
}

/** The home of the images' user (uid 1000 is the node image's `node`); the runtime sets HOME from it. */
const IMAGE_USER_HOME = '/home/node';

/** Node options that take the next argument as their value. */
const NODE_OPTIONS_WITH_VALUE = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader']);

/**
 * A deployment file's containers as local processes, translated to this machine and nothing
 * more: every host:port of the deployment becomes a loopback port (AddressBook), every
 * container path a directory of the container's sandbox (ContainerSandbox), `PATH` this
 * machine's (node, go and git), and the test's go settings are added. The command is the one
 * the file (or the image) gives, run by this machine's node through startAppProcess. Redis and
 * MongoDB are started locally (redis-server, FerretDB) in their place. Containers start in the
 * order their dependencies ask for, each waited on with the file's own health checks.
 */
export class LocalDeployment {
  readonly containers = new Map<string, LocalContainer>();
  private readonly redisServers: RedisServer[] = [];
  private mongo: FerretDbServer | undefined;
  private readonly ready = new Map<string, Promise<void>>();

  private constructor(
    private readonly options: LocalDeploymentOptions,
    readonly book: AddressBook,
  ) {}

  static async start(options: LocalDeploymentOptions): Promise<LocalDeployment> {
    const deployment = new LocalDeployment(options, new AddressBook(options.namespace));
    try {
      await deployment.startAll();
    } catch (error) {
      await deployment.stop().catch(() => undefined);
      throw error;
    }
    return deployment;
  }

  /** The loopback port a name of the deployment (`proxy:3000`) reaches. */
  resolve(host: string, port: number): number {
    return this.book.resolve(host, port);
  }

  container(name: string): LocalContainer {
    const container = this.containers.get(name);
    if (!container) throw new Error(`no container ${name}`);
    return container;
  }

  /**
   * Stops every container (the last started first) and the servers; fails if a container
   * exited uncleanly or wrote into its image's files (its root file system is read-only).
   */
  async stop(): Promise<void> {
    const problems: string[] = [];
    for (const container of [...this.containers.values()].reverse()) {
      const code = await container.process.stop();
      if (code !== 0 && code !== null) {
        problems.push(`${container.spec.name} exited with ${code}:\n${container.process.stderr()}`);
      }
      const files = await container.sandbox.imageFiles();
      const written = files.filter((file) => !container.imageFiles.includes(file));
      if (written.length > 0)
        problems.push(`${container.spec.name} wrote into its read-only image: ${written.join(', ')}`);
      await container.sandbox.remove();
    }
    for (const redis of this.redisServers) await redis.stop();
    await this.mongo?.stop();
    if (problems.length > 0) throw new Error(problems.join('\n'));
  }

  private async startAll(): Promise<void> {
    const { containers, backing } = this.options;
    for (const server of backing) {
      if (server.kind === 'redis') {
        const redis = await startRedisServer();
        this.redisServers.push(redis);
        await this.book.listen(server.name, server.containerPort, redis.port);
      } else {
        await ensureFerretDb();
        this.mongo = await startFerretDb();
        await this.book.listen(server.name, server.containerPort, Number(new URL(this.mongo.uri).port));
      }
      this.book.route(server.name, server.containerPort, server.name, server.containerPort);
      this.ready.set(server.name, Promise.resolve());
    }
    // Every container's listening ports first, so that any reference to one resolves.
    for (const container of containers) {
      for (const port of this.listeningPorts(container).values()) {
        await this.book.listen(container.name, port);
        if (!this.options.routes) this.book.route(container.name, port, container.name, port);
      }
    }
    for (const route of this.options.routes ?? [])
      this.book.route(route.host, route.port, route.owner, route.containerPort);

    for (const container of order(containers)) {
      for (const [dependency, condition] of Object.entries(container.dependsOn)) {
        if (condition === 'service_healthy') await this.readiness(dependency);
      }
      await this.startContainer(container);
    }
    for (const container of containers) await this.readiness(container.name);
  }

  /** The ports the app listens on in the container. */
  private listeningPorts(container: ContainerSpec): Map<string, number> {
    return listeningPorts(this.options.schemas[container.app], container.env);
  }

  private async startContainer(spec: ContainerSpec): Promise<void> {
    const sandbox = await ContainerSandbox.create(this.options.dockerfile, spec.image, spec.writable);
    try {
      const imageFiles = await sandbox.imageFiles();
      const env = await this.environment(spec, sandbox);
      const { nodeArgs, script, args } = this.command(spec, sandbox);
      const process = await startAppProcess(script, {
        nodeArgs,
        args,
        env,
        cwd: sandbox.hostPath(spec.image.workdir),
        // Any line: whether it is up is for the file's own health checks to say.
        ready: /\n/,
      }).catch((error: unknown) => {
        throw new Error(`${spec.name} did not start: ${(error as Error).message}`);
      });
      this.containers.set(spec.name, { spec, process, sandbox, env, imageFiles });
    } catch (error) {
      await sandbox.remove();
      throw error;
    }
  }

  private async environment(spec: ContainerSpec, sandbox: ContainerSandbox): Promise<Record<string, string>> {
    const env: Record<string, string> = { HOME: IMAGE_USER_HOME, TMPDIR: '/tmp', ...spec.env };
    for (const [name, value] of Object.entries(env)) {
      try {
        env[name] = this.book.rewrite(value.startsWith('/') ? sandbox.hostPath(value) : value);
      } catch (error) {
        throw new Error(`${spec.name}: ${name}=${value}: ${(error as Error).message}`);
      }
    }
    for (const [variable, port] of this.listeningPorts(spec)) {
      env[variable] = String(await this.book.listen(spec.name, port));
    }
    env['PATH'] = process.env['PATH'] ?? '';
    return { ...env, ...this.options.extraEnv };
  }

  /** The container's argv as this machine's node runs it: options, the script, its arguments. */
  private command(
    spec: ContainerSpec,
    sandbox: ContainerSandbox,
  ): { nodeArgs: string[]; script: string; args: string[] } {
    const [program, ...rest] = spec.argv;
    if (program === undefined || posix.basename(program) !== 'node') {
      throw new Error(`${spec.name} runs ${JSON.stringify(spec.argv)}: the images run node`);
    }
    const mapped = rest.map((arg) => (arg.startsWith('/') ? sandbox.hostPath(arg) : arg));
    const nodeArgs: string[] = [];
    let index = 0;
    while (index < mapped.length && (mapped[index] ?? '').startsWith('-')) {
      const option = mapped[index] ?? '';
      nodeArgs.push(option);
      index += 1;
      if (NODE_OPTIONS_WITH_VALUE.has(option) && index < mapped.length) {
        nodeArgs.push(mapped[index] ?? '');
        index += 1;
      }
    }
    const script = mapped[index];
    if (script === undefined)
      throw new Error(`${spec.name} runs node without a script: ${JSON.stringify(spec.argv)}`);
    return { nodeArgs, script, args: mapped.slice(index + 1) };
  }

  /** Resolves once every readiness check of `name` passes (then its liveness checks must pass too). */
  private readiness(name: string): Promise<void> {
    let ready = this.ready.get(name);
    if (!ready) {
      ready = this.waitReady(name);
      this.ready.set(name, ready);
    }
    return ready;
  }

  private async waitReady(name: string): Promise<void> {
    const container = this.containers.get(name);
    if (!container) throw new Error(`${name} is needed before it has been started (depends_on)`);
    const { spec, process } = container;
    for (const check of spec.readiness) {
      await waitUntil(
        async () => {
          if (process.child.exitCode !== null || process.child.signalCode !== null) {
            throw new Error(`${name} exited with ${String(process.child.exitCode)}:\n${process.stderr()}`);
          }
          return this.runCheck(container, check);
        },
        {
          what: `${name} passes ${describe(check)}`,
          timeoutMs: this.options.readyTimeoutMs ?? 90_000,
          intervalMs: 200,
        },
      ).catch((error: unknown) => {
        throw new Error(
          `${(error as Error).message}\n${name}'s output:\n${process.stdout()}\n${process.stderr()}`,
        );
      });
    }
    for (const check of spec.liveness) {
      if (!(await this.runCheck(container, check)))
        throw new Error(`${name} is ready but fails ${describe(check)}`);
    }
  }

  private runCheck(container: LocalContainer, check: HealthCheck): Promise<boolean> {
    const self = container.spec.name;
    switch (check.kind) {
      case 'http':
        return httpCheck(`http://127.0.0.1:${this.book.resolve('127.0.0.1', check.port, self)}${check.path}`);
      case 'grpc':
        return grpcCheck(`127.0.0.1:${this.book.resolve('127.0.0.1', check.port, self)}`, check.service);
      case 'command': {
        const [program, ...args] = check.argv.map((arg) =>
          this.book.rewrite(arg.startsWith('/') ? container.sandbox.hostPath(arg) : arg, self),
        );
        const file = program !== undefined && posix.basename(program) === 'node' ? process.execPath : program;
        return commandCheck(
          [file ?? '', ...args],
          { PATH: process.env['PATH'] ?? '' },
          container.sandbox.hostPath(container.spec.image.workdir),
        );
      }
    }
  }
}

function describe(check: HealthCheck): string {
  if (check.kind === 'http') return `GET :${check.port}${check.path}`;
  if (check.kind === 'grpc') return `gRPC health :${check.port}`;
  return JSON.stringify(check.argv);
}

/** Containers so that each comes after what it depends on (depends_on must not be circular). */
function order(containers: ContainerSpec[]): ContainerSpec[] {
  const byName = new Map(containers.map((container) => [container.name, container]));
  const sorted: ContainerSpec[] = [];
  const visiting = new Set<string>();
  const visit = (container: ContainerSpec) => {
    if (sorted.includes(container)) return;
    if (visiting.has(container.name))
      throw new Error(`depends_on goes round in a circle through ${container.name}`);
    visiting.add(container.name);
    for (const dependency of Object.keys(container.dependsOn)) {
      const next = byName.get(dependency);
      if (next) visit(next);
    }
    visiting.delete(container.name);
    sorted.push(container);
  };
  for (const container of containers) visit(container);
  return sorted;
}
