import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import type { K8sObject } from './k8s-model';
import { RenderedObjects } from './k8s-model';
import { unknownFields, validateObject } from './k8s-schema';
import { K8S_DIR, KUSTOMIZATIONS, type KustomizationName } from './repo-paths';

const rendered = {} as Record<KustomizationName, RenderedObjects>;

beforeAll(async () => {
  for (const name of Object.keys(KUSTOMIZATIONS) as KustomizationName[]) {
    rendered[name] = await RenderedObjects.render(KUSTOMIZATIONS[name]);
  }
});

describe.each(Object.keys(KUSTOMIZATIONS) as KustomizationName[])('kubectl kustomize k8s/…/%s', (name) => {
  it('renders objects that all validate against the Kubernetes OpenAPI schemas', async () => {
    const objects = rendered[name].objects;
    expect(objects.length).toBeGreaterThan(10);
    const problems: string[] = [];
    for (const object of objects) {
      for (const problem of await validateObject(object))
        problems.push(`${object.kind}/${object.metadata.name} ${problem}`);
    }
    expect(problems).toEqual([]);
  });

  it('uses no field the schemas do not know', async () => {
    const problems: string[] = [];
    for (const object of rendered[name].objects) {
      for (const field of await unknownFields(object))
        problems.push(`${object.kind}/${object.metadata.name} ${field}`);
    }
    expect(problems).toEqual([]);
  });

  it('has the Deployments of the four apps, with their Services, ConfigMaps, PDBs and the HPAs of the proxy and crathens', () => {
    const names = (kind: string) =>
      rendered[name]
        .ofKind(kind)
        .map((object) => object.metadata.name)
        .sort();
    expect(names('Deployment')).toEqual(['crathens', 'lathens', 'proxy', 'storage']);
    expect(names('Service')).toEqual(expect.arrayContaining(['crathens', 'lathens', 'proxy', 'storage']));
    expect(names('PodDisruptionBudget')).toEqual(['crathens', 'lathens', 'proxy', 'storage']);
    expect(names('HorizontalPodAutoscaler')).toEqual(['crathens', 'proxy']);
    for (const hpa of rendered[name].ofKind('HorizontalPodAutoscaler')) {
      const target = (hpa['spec'] as { scaleTargetRef: { kind: string; name: string } }).scaleTargetRef;
      expect(rendered[name].find(target.kind, target.name), hpa.metadata.name).toBeDefined();
    }
    expect(names('ConfigMap').map((configMap) => configMap.replace(/-[a-z0-9]{10}$/, ''))).toEqual([
      'crathens-config',
      'lathens-config',
      'proxy-config',
      'storage-config',
    ]);
  });
});

describe('the overlays', () => {
  it('put every namespaced object into their namespace, and create it', () => {
    for (const [overlay, namespace] of [
      ['dev', 'modproxy-dev'],
      ['prod', 'modproxy'],
    ] as const) {
      for (const object of rendered[overlay].objects.filter((candidate) => candidate.kind !== 'Namespace')) {
        expect(object.metadata.namespace, `${overlay} ${object.kind}/${object.metadata.name}`).toBe(
          namespace,
        );
      }
      const created = rendered[overlay].find('Namespace', namespace);
      expect(created?.metadata.labels?.['pod-security.kubernetes.io/enforce'], overlay).toBe('restricted');
    }
  });

  it('dev runs Redis and MongoDB as StatefulSets and carries a development Secret; prod runs neither and expects the Secret', () => {
    const statefulSets = (overlay: KustomizationName) =>
      rendered[overlay]
        .ofKind('StatefulSet')
        .map((object) => object.metadata.name)
        .sort();
    expect(statefulSets('dev')).toEqual(['mongo', 'redis-cache', 'redis-queue']);
    expect(statefulSets('prod')).toEqual([]);
    expect(rendered.dev.ofKind('Secret').map((object) => object.metadata.name)).toEqual([
      expect.stringMatching(/^modproxy-secrets-/),
    ]);
    expect(rendered.prod.ofKind('Secret')).toEqual([]);
  });

  it('point prod at managed services through the Secret only: no in-cluster address for Redis or MongoDB', () => {
    const text = JSON.stringify(rendered.prod.objects);
    expect(text).not.toMatch(/redis-queue:|redis-cache:|mongo:27017/);
    const template = parse(readFileSync(join(K8S_DIR, 'secret.template.yaml'), 'utf8')) as K8sObject & {
      stringData: Record<string, string>;
    };
    expect(template.metadata.name).toBe('modproxy-secrets');
    expect(template.stringData['mongodb-uri']).toMatch(/^mongodb:\/\//);
    expect(template.stringData['queue-redis-url']).toMatch(/^rediss:\/\//);
  });

  it('serve the proxy through an Ingress with TLS for its host', () => {
    for (const overlay of ['dev', 'prod'] as const) {
      const ingress = rendered[overlay].find('Ingress', 'proxy');
      const spec = ingress?.['spec'] as {
        tls: Array<{ hosts: string[]; secretName: string }>;
        rules: Array<{ host: string; http: { paths: Array<{ backend: { service: { name: string } } }> } }>;
      };
      const hosts = spec.rules.map((rule) => rule.host);
      expect(
        spec.tls.flatMap((tls) => tls.hosts),
        overlay,
      ).toEqual(hosts);
      expect(spec.tls[0]?.secretName, overlay).toBeTruthy();
      expect(spec.rules[0]?.http.paths[0]?.backend.service.name, overlay).toBe('proxy');
      // The GOPROXY line the proxy prints is the Ingress' URL.
      const config = rendered[overlay]
        .ofKind('ConfigMap')
        .find((object) => object.metadata.name.startsWith('proxy-config'));
      expect((config?.['data'] as Record<string, string>)['PUBLIC_URL'], overlay).toBe(`https://${hosts[0]}`);
    }
  });

  it('catch what they should: a misspelt field and a mistyped value', async () => {
    const deployment = structuredClone(rendered.base.find('Deployment', 'proxy')) as K8sObject & {
      spec: { replicas: unknown; template: { spec: { containers: Array<Record<string, unknown>> } } };
    };
    const container = deployment.spec.template.spec.containers[0] ?? {};
    container['readinessProbes'] = container['readinessProbe'];
    expect(await unknownFields(deployment)).toEqual(['/spec/template/spec/containers/0/readinessProbes']);
    deployment.spec.replicas = 'two';
    expect(await validateObject(deployment)).toEqual(['/spec/replicas: must be integer']);
  });
});
