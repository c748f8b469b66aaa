import type { K8sObject, RenderedObjects, Workload } from './k8s-model';

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }>;
}

interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: unknown;
}

interface PolicySpec {
  podSelector: LabelSelector;
  policyTypes?: string[];
  ingress?: Array<{ from?: PolicyPeer[]; ports?: Array<{ port?: number | string }> }>;
}

/** Who may connect to a port of a workload's pods. */
export interface AllowedSources {
  /** Anyone at all (no policy selects the pods, or a rule without `from`). */
  anyone: boolean;
  /** Workloads of the same namespace whose pods a rule selects. */
  workloads: string[];
  /** Other namespaces (and IP blocks) a rule admits, as written. */
  outside: string[];
}

export function matchesSelector(
  selector: LabelSelector | undefined,
  labels: Record<string, string>,
): boolean {
  if (!selector) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {}))
    if (labels[key] !== value) return false;
  for (const expression of selector.matchExpressions ?? []) {
    const value = labels[expression.key];
    const values = expression.values ?? [];
    const holds =
      expression.operator === 'In'
        ? value !== undefined && values.includes(value)
        : expression.operator === 'NotIn'
          ? value === undefined || !values.includes(value)
          : expression.operator === 'Exists'
            ? value !== undefined
            : value === undefined;
    if (!holds) return false;
  }
  return true;
}

/**
 * NetworkPolicy ingress semantics for one port of `target`'s pods: allowed when no policy
 * selects them, otherwise the union of the rules of the policies that do (a rule's ports, if
 * any, must include the port, by number or by the container port's name).
 */
export function allowedSources(rendered: RenderedObjects, target: Workload, port: number): AllowedSources {
  const portNames = target.pod.containers
    .flatMap((container) => container.ports ?? [])
    .filter((candidate) => candidate.containerPort === port)
    .map((candidate) => candidate.name);
  const policies = rendered
    .ofKind('NetworkPolicy')
    .map((object: K8sObject) => object['spec'] as PolicySpec)
    .filter((spec) => (spec.policyTypes ?? ['Ingress']).includes('Ingress'))
    .filter((spec) => matchesSelector(spec.podSelector, target.labels));
  if (policies.length === 0) return { anyone: true, workloads: [], outside: [] };
  const allowed: AllowedSources = { anyone: false, workloads: [], outside: [] };
  for (const rule of policies.flatMap((spec) => spec.ingress ?? [])) {
    const ports = rule.ports ?? [];
    const coversPort =
      ports.length === 0 ||
      ports.some(
        (candidate) =>
          candidate.port === undefined ||
          candidate.port === port ||
          portNames.includes(String(candidate.port)),
      );
    if (!coversPort) continue;
    if (!rule.from || rule.from.length === 0) {
      allowed.anyone = true;
      continue;
    }
    for (const peer of rule.from) {
      if (peer.namespaceSelector || peer.ipBlock) {
        allowed.outside.push(JSON.stringify(peer));
        continue;
      }
      for (const workload of rendered.workloads()) {
        if (
          matchesSelector(peer.podSelector, workload.labels) &&
          !allowed.workloads.includes(workload.name)
        ) {
          allowed.workloads.push(workload.name);
        }
      }
    }
  }
  allowed.workloads.sort();
  return allowed;
}
