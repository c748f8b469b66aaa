import {
  appOfImage,
  type BackingServiceSpec,
  type ContainerSpec,
  STOCK_IMAGE_PORTS,
  stockImageKind,
} from './container-spec';
import type { DockerfileModel } from './dockerfile-model';
import type { HealthCheck } from './health-check';
import { containerPortNumber, type K8sContainer, type Probe, type RenderedObjects } from './k8s-model';
import { APPS } from './repo-paths';

export interface K8sContainers {
  containers: ContainerSpec[];
  backing: BackingServiceSpec[];
  /** Every Service port, to the container port of the workload it selects. */
  routes: Array<{ host: string; port: number; owner: string; containerPort: number }>;
  namespace: string | undefined;
}

/**
 * What the kubelet runs for a rendered kustomization, as container specs: each workload's app
 * container with its image's configuration, the rendered `command`/`args` over the image's
 * ENTRYPOINT/CMD, the environment from env/envFrom with the ConfigMaps and Secrets resolved,
 * its probes, and the Services that route to it. Kubernetes has no start order; a container
 * that refers to another's Service is started after it, as restarts would settle it.
 */
export function k8sContainers(rendered: RenderedObjects, dockerfile: DockerfileModel): K8sContainers {
  const containers: ContainerSpec[] = [];
  const backing: BackingServiceSpec[] = [];
  const routes: K8sContainers['routes'] = [];
  const namespaces = new Set(rendered.objects.map((object) => object.metadata.namespace).filter(Boolean));
  for (const workload of rendered.workloads()) {
    const [container, ...others] = workload.pod.containers;
    if (!container || others.length > 0) throw new Error(`${workload.name} must have exactly one container`);
    for (const route of rendered.servicePortsOf(workload)) {
      routes.push({
        host: route.service,
        port: route.port,
        owner: workload.name,
        containerPort: route.containerPort,
      });
    }
    const kind = stockImageKind(container.image);
    if (kind) {
      const ports = (container.ports ?? []).map((port) => port.containerPort);
      if (!ports.includes(STOCK_IMAGE_PORTS[kind])) {
        throw new Error(
          `${workload.name} declares ports ${ports.join(', ')}; ${kind} listens on ${STOCK_IMAGE_PORTS[kind]}`,
        );
      }
      backing.push({ name: workload.name, kind, containerPort: STOCK_IMAGE_PORTS[kind] });
      continue;
    }
    const app = appOfImage(container.image, APPS);
    if (!app)
      throw new Error(`${workload.name} runs ${container.image}, neither an app image nor Redis or MongoDB`);
    const image = dockerfile.image(app);
    // Kubernetes: `command` replaces ENTRYPOINT (and drops CMD), `args` replaces CMD.
    const entrypoint = container.command ?? image.entrypoint;
    const cmd = container.args ?? (container.command ? [] : image.cmd);
    const mounted = new Set((workload.pod.volumes ?? []).map((volume) => volume.name));
    containers.push({
      name: workload.name,
      app,
      image,
      argv: [...entrypoint, ...cmd],
      env: { ...image.env, ...rendered.containerEnv(container) },
      writable: (container.volumeMounts ?? [])
        .filter((mount) => !mount.readOnly && mounted.has(mount.name))
        .map((mount) => mount.mountPath),
      readiness: [container.startupProbe, container.readinessProbe]
        .filter((probe): probe is Probe => probe !== undefined)
        .map((probe) => probeCheck(container, probe)),
      liveness: container.livenessProbe ? [probeCheck(container, container.livenessProbe)] : [],
      dependsOn: {},
    });
  }
  // The start order: after every workload whose Service the environment names.
  for (const container of containers) {
    const text = Object.values(container.env).join('\n');
    for (const route of routes) {
      if (
        route.owner !== container.name &&
        new RegExp(`\\b${route.host}(\\.[a-z0-9.-]+)?:${route.port}\\b`).test(text)
      ) {
        container.dependsOn[route.owner] = 'service_healthy';
      }
    }
  }
  return { containers, backing, routes, namespace: namespaces.size === 1 ? [...namespaces][0] : undefined };
}

function probeCheck(container: K8sContainer, probe: Probe): HealthCheck {
  if (probe.httpGet) {
    const port = containerPortNumber(container, probe.httpGet.port);
    if (port === undefined)
      throw new Error(
        `${container.name}: a probe names port ${String(probe.httpGet.port)}, which it does not declare`,
      );
    return { kind: 'http', port, path: probe.httpGet.path ?? '/' };
  }
  if (probe.grpc) return { kind: 'grpc', port: probe.grpc.port, service: probe.grpc.service ?? '' };
  if (probe.exec) return { kind: 'command', argv: probe.exec.command };
  throw new Error(`${container.name}: a probe of a kind the test does not run`);
}
