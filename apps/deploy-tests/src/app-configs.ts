import { join } from 'node:path';
import type { z } from 'zod';
import { inheritedFromServer } from '@modproxy/upstream';
import { APPS, type AppName, REPO_ROOT } from './repo-paths';

/** Each app's configuration schema: the export of apps/<app>/src/config.ts. */
const SCHEMA_EXPORTS: Record<AppName, string> = {
  proxy: 'proxyConfigSchema',
  storage: 'storageConfigSchema',
  lathens: 'lathensConfigSchema',
  crathens: 'crathensConfigSchema',
};

/** The apps that run the go command (UPSTREAM may be `direct`), so carry git and go in their image. */
export const VCS_APPS: ReadonlySet<AppName> = new Set(['proxy', 'lathens', 'crathens']);

/**
 * Variables read by something other than the app's schema: node and the OS (`PATH`, `HOME`,
 * `TMPDIR`, `NODE_ENV`) and the OpenTelemetry entry every app loads first (the standard
 * `OTEL_*` variables it checks, libs/observability tracing).
 */
const RUNTIME_VARIABLES: ReadonlySet<string> = new Set(['PATH', 'HOME', 'TMPDIR', 'NODE_ENV']);
const TELEMETRY_VARIABLES: ReadonlySet<string> = new Set([
  'OTEL_SDK_DISABLED',
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
  'OTEL_TRACES_EXPORTER',
  'OTEL_TRACES_SAMPLER',
  'OTEL_TRACES_SAMPLER_ARG',
  'OTEL_LOG_LEVEL',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_EXPORTER_OTLP_PROTOCOL',
  'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
  'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_EXPORTER_OTLP_TRACES_HEADERS',
  'OTEL_EXPORTER_OTLP_TIMEOUT',
  'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT',
  'OTEL_EXPORTER_OTLP_COMPRESSION',
  'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION',
  'OTEL_BSP_SCHEDULE_DELAY',
  'OTEL_BSP_EXPORT_TIMEOUT',
  'OTEL_BSP_MAX_QUEUE_SIZE',
  'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
]);

export type ConfigSchema = z.ZodObject;

/**
 * The apps' schemas, loaded by path: Nx forbids importing an app project from another project,
 * and these tests treat the apps as what they ship (their bundles and their configuration),
 * so they read config.ts the way the images read main.js.
 */
export async function loadConfigSchemas(): Promise<Record<AppName, ConfigSchema>> {
  const entries = await Promise.all(
    APPS.map(async (app) => {
      const module = (await import(join(REPO_ROOT, 'apps', app, 'src', 'config.ts'))) as Record<
        string,
        unknown
      >;
      const schema = module[SCHEMA_EXPORTS[app]] as ConfigSchema | undefined;
      if (!schema?.shape) throw new Error(`apps/${app}/src/config.ts exports no ${SCHEMA_EXPORTS[app]}`);
      return [app, schema] as const;
    }),
  );
  return Object.fromEntries(entries) as Record<AppName, ConfigSchema>;
}

/** Whether `app` (or what runs inside it: node, the tracing entry, the go command) reads `name`. */
export function isVariableRead(app: AppName, schema: ConfigSchema, name: string): boolean {
  if (name in schema.shape) return true;
  if (RUNTIME_VARIABLES.has(name) || TELEMETRY_VARIABLES.has(name)) return true;
  return VCS_APPS.has(app) && inheritedFromServer(name);
}

/** The variables of `env` that nothing in `app` reads: a misspelt name is silently ignored otherwise. */
export function unreadVariables(app: AppName, schema: ConfigSchema, env: Record<string, string>): string[] {
  return Object.keys(env).filter((name) => !isVariableRead(app, schema, name));
}

/**
 * The configuration the app would start with (its schema's defaults included), or every
 * problem its start-up would stop on, each naming the variable. Only the schema's own keys are
 * passed, as loadConfig does; empty values count as unset, as there.
 */
export function parseAppConfig(
  schema: ConfigSchema,
  env: Record<string, string>,
): { config: Record<string, unknown>; problems: string[] } {
  const raw: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const result = schema.safeParse(raw);
  if (result.success) return { config: result.data as Record<string, unknown>, problems: [] };
  return {
    config: {},
    problems: result.error.issues.map(
      (issue) => `${issue.path.join('.') || '(configuration)'}: ${issue.message}`,
    ),
  };
}

/** The port variables of an app's schema (`PORT`, `GRPC_PORT`, `HTTP_PORT`, `ADMIN_PORT`): what it listens on. */
export function listeningPortVariables(schema: ConfigSchema): string[] {
  return Object.keys(schema.shape).filter((name) => /(^|_)PORT$/.test(name));
}

/** The ports the app listens on with `env`: its schema's port variables, defaults included. */
export function listeningPorts(schema: ConfigSchema, env: Record<string, string>): Map<string, number> {
  const ports = new Map<string, number>();
  for (const variable of listeningPortVariables(schema)) {
    const field = schema.shape[variable] as {
      safeParse(value: unknown): { success: boolean; data?: unknown };
    };
    const raw = env[variable];
    const parsed = field.safeParse(raw === '' ? undefined : raw);
    if (parsed.success && typeof parsed.data === 'number') ports.set(variable, parsed.data);
  }
  return ports;
}

/** The port variable whose HTTP server serves /metrics (the gRPC apps and crathens have one beside). */
export const METRICS_PORT_VARIABLE: Record<AppName, string> = {
  proxy: 'PORT',
  storage: 'HTTP_PORT',
  lathens: 'HTTP_PORT',
  crathens: 'ADMIN_PORT',
};
