import type { K8sObject } from './k8s-model';

interface ValidationIssue {
  instancePath: string;
  message?: string;
  keyword?: string;
}

type ModelClass = new (data: unknown) => { validate(): void };

/** The kubernetes-models class of an object's apiVersion and kind (`apps/v1` → `kubernetes-models/apps/v1/Deployment`). */
export async function modelClass(object: K8sObject): Promise<ModelClass> {
  const [group, version] = object.apiVersion.includes('/')
    ? object.apiVersion.split('/')
    : [undefined, object.apiVersion];
  const path = group
    ? `kubernetes-models/${group}/${version}/${object.kind}`
    : `kubernetes-models/${version}/${object.kind}`;
  const module = (await import(path)) as Record<string, ModelClass | undefined>;
  const model = module[object.kind];
  if (!model) throw new Error(`kubernetes-models has no ${object.apiVersion} ${object.kind}`);
  return model;
}

/** What the official OpenAPI schema (as bundled by kubernetes-models) says is wrong with `data`. */
function schemaIssues(model: ModelClass, data: unknown): ValidationIssue[] {
  try {
    new model(data).validate();
    return [];
  } catch (error) {
    const issues = (error as { errors?: ValidationIssue[] }).errors;
    if (!issues) throw error;
    return issues;
  }
}

/** Every schema violation of `object`, as `path: message`. */
export async function validateObject(object: K8sObject): Promise<string[]> {
  const model = await modelClass(object);
  return schemaIssues(model, object).map(
    (issue) => `${issue.instancePath || '/'}: ${issue.message ?? issue.keyword}`,
  );
}

/**
 * The fields of `object` that the schema does not know (the bundled validators accept any extra
 * field, as the API server's non-strict decoding does; `kubectl apply` warns or, with strict
 * validation, refuses). A field is known when giving it a value no schema type accepts (a
 * symbol) makes the schema complain at that very path; its children are checked the same way.
 * Free-form fields (those the schema lets hold anything) would count as unknown; none is used here.
 */
export async function unknownFields(object: K8sObject): Promise<string[]> {
  const model = await modelClass(object);
  const unknown: string[] = [];
  const probe = Symbol('probe');
  const visit = (holder: Record<string, unknown> | unknown[], path: string) => {
    for (const key of Object.keys(holder)) {
      const container = holder as Record<string, unknown>;
      const value = container[key];
      // A JSON pointer, as the validators' instancePath is (`app.kubernetes.io~1name`).
      const fieldPath = `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      if (!Array.isArray(holder)) {
        container[key] = probe;
        const flagged = schemaIssues(model, object).some((issue) => issue.instancePath === fieldPath);
        container[key] = value;
        if (!flagged) {
          unknown.push(fieldPath);
          continue;
        }
      }
      if (typeof value === 'object' && value !== null) visit(value as Record<string, unknown>, fieldPath);
    }
  };
  visit(object as unknown as Record<string, unknown>, '');
  return unknown;
}
