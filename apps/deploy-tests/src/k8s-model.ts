import { parseAllDocuments } from 'yaml';
import { runCommand } from '@modproxy/testing';

/** A Kubernetes object as rendered (plain JSON). */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
}

export interface Probe {
  httpGet?: { path?: string; port: number | string };
  grpc?: { port: number; service?: string };
  exec?: { command: string[] };
  tcpSocket?: { port: number | string };
}

export interface K8sContainer {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: ContainerPort[];
  env?: Array<{
    name: string;
    value?: string;
    valueFrom?: {
      secretKeyRef?: { name: string; key: string; optional?: boolean };
      configMapKeyRef?: { name: string; key: string; optional?: boolean };
    };
  }>;
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string }; prefix?: string }>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  securityContext?: Record<string, unknown>;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}

export interface PodSpec {
  containers: K8sContainer[];
  securityContext?: Record<string, unknown>;
  volumes?: Array<{ name: string; [source: string]: unknown }>;
  enableServiceLinks?: boolean;
  topologySpreadConstraints?: unknown[];
}

/** A Deployment's or StatefulSet's pod template, with what selects it. */
export interface Workload {
  kind: string;
  name: string;
  labels: Record<string, string>;
  pod: PodSpec;
}

export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
}

/** `kubectl kustomize <dir>`: every object the kustomization renders, offline. */
export async function renderKustomization(dir: string): Promise<K8sObject[]> {
  const result = await runCommand('kubectl', ['kustomize', dir], {
    env: { PATH: process.env['PATH'] ?? '' },
  });
  if (result.exitCode !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${result.stderr}`);
  return parseAllDocuments(result.stdout)
    .map((document) => document.toJS() as K8sObject | null)
    .filter((object): object is K8sObject => object !== null);
}

/** The rendered objects of one kustomization, with the lookups the tests need. */
export class RenderedObjects {
  constructor(readonly objects: K8sObject[]) {}

  static async render(dir: string): Promise<RenderedObjects> {
    return new RenderedObjects(await renderKustomization(dir));
  }

  ofKind(kind: string): K8sObject[] {
    return this.objects.filter((object) => object.kind === kind);
  }

  find(kind: string, name: string): K8sObject | undefined {
    return this.objects.find((object) => object.kind === kind && object.metadata.name === name);
  }

  workloads(): Workload[] {
    return this.objects
      .filter((object) => ['Deployment', 'StatefulSet', 'DaemonSet'].includes(object.kind))
      .map((object) => {
        const template = (
          object['spec'] as { template: { metadata?: { labels?: Record<string, string> }; spec: PodSpec } }
        ).template;
        return {
          kind: object.kind,
          name: object.metadata.name,
          labels: template.metadata?.labels ?? {},
          pod: template.spec,
        };
      });
  }

  workload(name: string): Workload {
    const workload = this.workloads().find((candidate) => candidate.name === name);
    if (!workload) throw new Error(`no Deployment or StatefulSet named ${name}`);
    return workload;
  }

  /**
   * The environment a container starts with, as the kubelet builds it: `envFrom` in order, then
   * `env` (which wins), values taken from the rendered ConfigMaps and Secrets. A reference to an
   * object or key that is not rendered is an error unless it is optional.
   */
  containerEnv(container: K8sContainer): Record<string, string> {
    const env: Record<string, string> = {};
    for (const source of container.envFrom ?? []) {
      const data = source.configMapRef
        ? this.configMapData(source.configMapRef.name)
        : source.secretRef
          ? this.secretData(source.secretRef.name)
          : undefined;
      if (!data) throw new Error(`${container.name}: envFrom names an object that is not rendered`);
      for (const [key, value] of Object.entries(data)) env[`${source.prefix ?? ''}${key}`] = value;
    }
    for (const variable of container.env ?? []) {
      if (variable.value !== undefined) {
        env[variable.name] = variable.value;
        continue;
      }
      const ref = variable.valueFrom?.secretKeyRef ?? variable.valueFrom?.configMapKeyRef;
      if (!ref) continue;
      const data = variable.valueFrom?.secretKeyRef
        ? this.secretData(ref.name)
        : this.configMapData(ref.name);
      const value = data?.[ref.key];
      if (value === undefined) {
        if (ref.optional) continue;
        throw new Error(
          `${container.name}: ${variable.name} refers to ${ref.name}/${ref.key}, which is not rendered`,
        );
      }
      env[variable.name] = value;
    }
    return env;
  }

  /** The Service ports that reach `workload`'s pods: `[service, port] → container port`. */
  servicePortsOf(workload: Workload): Array<{ service: string; port: number; containerPort: number }> {
    const ports: Array<{ service: string; port: number; containerPort: number }> = [];
    const containerPorts = workload.pod.containers.flatMap((container) => container.ports ?? []);
    for (const service of this.ofKind('Service')) {
      const spec = service['spec'] as { selector?: Record<string, string>; ports?: ServicePort[] };
      const selector = spec.selector ?? {};
      const selects =
        Object.keys(selector).length > 0 &&
        Object.entries(selector).every(([key, value]) => workload.labels[key] === value);
      if (!selects) continue;
      for (const servicePort of spec.ports ?? []) {
        const target = servicePort.targetPort ?? servicePort.port;
        const containerPort =
          typeof target === 'number'
            ? target
            : containerPorts.find((port) => port.name === target)?.containerPort;
        if (containerPort === undefined) {
          throw new Error(
            `Service ${service.metadata.name} targets port ${String(target)}, which ${workload.name} does not name`,
          );
        }
        ports.push({ service: service.metadata.name, port: servicePort.port, containerPort });
      }
    }
    return ports;
  }

  configMapData(name: string): Record<string, string> | undefined {
    const object = this.find('ConfigMap', name);
    return object ? ((object['data'] as Record<string, string> | undefined) ?? {}) : undefined;
  }

  secretData(name: string): Record<string, string> | undefined {
    const object = this.find('Secret', name);
    if (!object) return undefined;
    const data = Object.fromEntries(
      Object.entries((object['data'] as Record<string, string> | undefined) ?? {}).map(([key, value]) => [
        key,
        Buffer.from(value, 'base64').toString('utf8'),
      ]),
    );
    return { ...data, ...((object['stringData'] as Record<string, string> | undefined) ?? {}) };
  }
}

/** A named container port resolved to its number. */
export function containerPortNumber(container: K8sContainer, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((candidate) => candidate.name === port)?.containerPort;
}
