import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

/** A volume or tmpfs mount of a service, in the container. */
export interface ComposeMount {
  /** `volume` (named), `bind` (a path of the repository) or `tmpfs`. */
  type: 'volume' | 'bind' | 'tmpfs';
  /** The volume's name or the bound path; undefined for tmpfs. */
  source: string | undefined;
  target: string;
  readOnly: boolean;
}

/** A published port of a service. */
export interface ComposePort {
  /** The host address it is bound to; undefined: every interface of the host. */
  hostIp: string | undefined;
  published: number;
  target: number;
}

/** One service of docker-compose.yml, normalized the way compose reads it. */
export interface ComposeService {
  name: string;
  image: string | undefined;
  buildTarget: string | undefined;
  profiles: string[];
  environment: Record<string, string>;
  /** `entrypoint` and `command` when the file sets them (otherwise the image's apply). */
  entrypoint: string[] | undefined;
  command: string[] | undefined;
  user: string | undefined;
  readOnly: boolean;
  capDrop: string[];
  healthcheck: string[] | undefined;
  dependsOn: Record<string, string>;
  mounts: ComposeMount[];
  /** `ports` entries (`[host_ip:]published:target[/protocol]`); `hostIp` undefined: every interface. */
  ports: ComposePort[];
}

export interface ComposeFile {
  /** The file as parsed (YAML merge keys applied, variables interpolated). */
  raw: Record<string, unknown>;
  services: Record<string, ComposeService>;
  volumes: string[];
}

/**
 * Reads docker-compose.yml as compose does: YAML anchors and merge keys, then `${VAR:-default}`
 * interpolation from `variables` (by default none, so the file's own defaults apply).
 */
export function readComposeFile(path: string, variables: Record<string, string> = {}): ComposeFile {
  const parsed = parse(readFileSync(path, 'utf8'), { merge: true }) as unknown;
  const raw = interpolate(parsed, variables) as Record<string, unknown>;
  const services: Record<string, ComposeService> = {};
  for (const [name, value] of Object.entries(asRecord(raw['services']))) {
    services[name] = normalizeService(name, asRecord(value));
  }
  return { raw, services, volumes: Object.keys(asRecord(raw['volumes'])) };
}

function normalizeService(name: string, service: Record<string, unknown>): ComposeService {
  const build = service['build'];
  const healthcheck = asRecord(service['healthcheck']);
  return {
    name,
    image: optionalString(service['image']),
    buildTarget:
      typeof build === 'object' && build !== null ? optionalString(asRecord(build)['target']) : undefined,
    profiles: stringList(service['profiles']),
    environment: environment(service['environment']),
    entrypoint: service['entrypoint'] === undefined ? undefined : words(service['entrypoint']),
    command: service['command'] === undefined ? undefined : words(service['command']),
    user: optionalString(service['user']),
    readOnly: service['read_only'] === true,
    capDrop: stringList(service['cap_drop']),
    healthcheck: healthcheckCommand(healthcheck['test']),
    dependsOn: dependsOn(service['depends_on']),
    mounts: [
      ...stringList(service['volumes']).map(volumeMount),
      ...stringList(service['tmpfs']).map((entry): ComposeMount => ({
        type: 'tmpfs',
        source: undefined,
        target: entry.split(':')[0] ?? entry,
        readOnly: false,
      })),
    ],
    ports: stringList(service['ports']).map(publishedPort),
  };
}

/** `${NAME}`, `${NAME:-default}`, `${NAME-default}` and `$$` in every string of the file. */
export function interpolate(value: unknown, variables: Record<string, string>): unknown {
  if (typeof value === 'string') {
    return value.replace(
      /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/g,
      (match, name?: string, operator?: string, fallback?: string) => {
        if (match === '$$') return '$';
        const set = name === undefined ? undefined : variables[name];
        if (operator === ':-') return set === undefined || set === '' ? (fallback ?? '') : set;
        if (operator === '-') return set ?? fallback ?? '';
        return set ?? '';
      },
    );
  }
  if (Array.isArray(value)) return value.map((item) => interpolate(item, variables));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, interpolate(item, variables)]),
    );
  }
  return value;
}

function environment(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (Array.isArray(value)) {
    return Object.fromEntries(
      value.map((entry) => {
        const text = String(entry);
        const at = text.indexOf('=');
        return at < 0 ? [text, ''] : [text.slice(0, at), text.slice(at + 1)];
      }),
    );
  }
  return Object.fromEntries(
    Object.entries(asRecord(value)).map(([key, item]) => [key, item === null ? '' : String(item)]),
  );
}

function healthcheckCommand(test: unknown): string[] | undefined {
  if (test === undefined) return undefined;
  const parts = words(test);
  if (parts[0] === 'CMD') return parts.slice(1);
  if (parts[0] === 'CMD-SHELL') return ['/bin/sh', '-c', parts.slice(1).join(' ')];
  if (parts[0] === 'NONE') return undefined;
  return ['/bin/sh', '-c', parts.join(' ')];
}

function dependsOn(value: unknown): Record<string, string> {
  if (Array.isArray(value)) return Object.fromEntries(value.map((name) => [String(name), 'service_started']));
  return Object.fromEntries(
    Object.entries(asRecord(value)).map(([name, item]) => [
      name,
      optionalString(asRecord(item)['condition']) ?? 'service_started',
    ]),
  );
}

/**
 * The short syntax of `ports`: `target`, `published:target` or `host_ip:published:target`, each
 * with an optional `/protocol` (an IPv6 host address in brackets).
 */
export function publishedPort(entry: string): ComposePort {
  const match = /^(?:(\[[^\]]+\]|[^:]+):)??(?:(\d+):)?(\d+)(?:\/(?:tcp|udp))?$/.exec(entry);
  if (!match?.[3]) throw new Error(`ports: ${entry} is not [host_ip:]published:target`);
  const target = Number.parseInt(match[3], 10);
  return {
    hostIp: match[1],
    published: match[2] === undefined ? target : Number.parseInt(match[2], 10),
    target,
  };
}

function volumeMount(entry: string): ComposeMount {
  const [source = '', target = '', mode] = entry.split(':');
  const bind = source.startsWith('.') || source.startsWith('/');
  return { type: bind ? 'bind' : 'volume', source, target, readOnly: mode === 'ro' };
}

/** A command as compose takes it: a list as is, a string split on spaces (no quoting is used here). */
function words(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  return String(value).split(/\s+/).filter(Boolean);
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

function optionalString(value: unknown): string | undefined {
  return value === undefined || value === null ? undefined : String(value);
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}
