import { ConfigError, redactText } from '@modproxy/config';

export type OtlpProtocol = 'http/protobuf' | 'http/json' | 'grpc';

export type SamplerName =
  | 'always_on'
  | 'always_off'
  | 'traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'parentbased_traceidratio';

export type DiagLevel = 'none' | 'error' | 'warn' | 'info' | 'debug' | 'verbose' | 'all';

/** The standard OpenTelemetry variables this platform reads, validated. */
export interface TelemetryConfig {
  /** `OTEL_SDK_DISABLED=true`: no tracing at all (no spans, no trace ids in logs). */
  disabled: boolean;
  /**
   * How spans leave the process; `undefined` when they do not (no exporter is made and no
   * connection is attempted). Spans are still made, so log lines carry trace ids.
   */
  otlp: { protocol: OtlpProtocol } | undefined;
  sampler: SamplerName;
  /** `OTEL_TRACES_SAMPLER_ARG` for the ratio samplers. Default 1. */
  samplerRatio: number;
  /** `OTEL_SERVICE_NAME`; default: the app's name. */
  serviceName: string | undefined;
  /** `OTEL_LOG_LEVEL`: what the SDK itself reports (export failures at warn). Default `warn`. */
  diagLevel: DiagLevel;
}

type Env = Readonly<Record<string, string | undefined>>;

const PROTOCOLS: readonly OtlpProtocol[] = ['http/protobuf', 'http/json', 'grpc'];
const SAMPLERS: readonly SamplerName[] = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];
const DIAG_LEVELS: readonly DiagLevel[] = ['none', 'error', 'warn', 'info', 'debug', 'verbose', 'all'];

/** Variables whose values are secrets: OTLP headers usually carry a collector's API key. */
export const OTLP_HEADER_VARIABLES = ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS'];

const ENDPOINT_VARIABLES = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'];

/**
 * Reads and checks the OpenTelemetry variables the SDK would otherwise read unchecked (an
 * unknown exporter or protocol is only a diagnostic there, and a typo silently sends spans
 * nowhere). Spans are exported over OTLP when `OTEL_TRACES_EXPORTER` is `otlp`, or when it is
 * unset and an OTLP endpoint is set; otherwise nothing is exported. A wrong value throws a
 * {@link ConfigError} naming the variable; header values are never echoed.
 */
export function readTelemetryConfig(env: Env = process.env): TelemetryConfig {
  const problems: string[] = [];
  const value = (name: string): string | undefined => {
    const raw = env[name]?.trim();
    return raw === undefined || raw === '' ? undefined : raw;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const raw = value(name);
    if (raw === undefined) return fallback;
    const lower = raw.toLowerCase() as T;
    if (allowed.includes(lower)) return lower;
    problems.push(`  ${name}: must be one of ${allowed.join(', ')} (got ${JSON.stringify(raw)})`);
    return fallback;
  };

  const disabled = oneOf('OTEL_SDK_DISABLED', ['true', 'false'], 'false') === 'true';

  const exporters = (value('OTEL_TRACES_EXPORTER') ?? '')
    .split(',')
    .map((item) => item.trim().toLowerCase())
    .filter((item) => item !== '');
  const unknown = exporters.filter((item) => item !== 'otlp' && item !== 'none');
  if (unknown.length > 0 || (exporters.includes('otlp') && exporters.includes('none'))) {
    problems.push(
      `  OTEL_TRACES_EXPORTER: must be otlp or none (got ${JSON.stringify(value('OTEL_TRACES_EXPORTER'))})`,
    );
  }

  for (const name of ENDPOINT_VARIABLES) {
    const raw = value(name);
    if (raw === undefined) continue;
    let url: URL | undefined;
    try {
      url = new URL(raw);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      problems.push(`  ${name}: must be an http:// or https:// URL (got ${JSON.stringify(redactText(raw))})`);
    }
  }
  const protocol = oneOf(
    'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
    PROTOCOLS,
    oneOf('OTEL_EXPORTER_OTLP_PROTOCOL', PROTOCOLS, 'http/protobuf'),
  );
  for (const name of OTLP_HEADER_VARIABLES) {
    const raw = value(name);
    if (raw !== undefined && !validHeaderList(raw)) {
      problems.push(`  ${name}: must be a comma-separated list of key=value pairs (value not shown)`);
    }
  }
  for (const name of ['OTEL_EXPORTER_OTLP_TIMEOUT', 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT']) {
    const raw = value(name);
    if (raw !== undefined && !/^[1-9]\d*$/.test(raw)) {
      problems.push(`  ${name}: must be a whole number of milliseconds above 0 (got ${JSON.stringify(raw)})`);
    }
  }
  oneOf('OTEL_EXPORTER_OTLP_COMPRESSION', ['gzip', 'none'], 'none');
  oneOf('OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', ['gzip', 'none'], 'none');

  const sampler = oneOf('OTEL_TRACES_SAMPLER', SAMPLERS, 'parentbased_always_on');
  let samplerRatio = 1;
  const ratio = value('OTEL_TRACES_SAMPLER_ARG');
  if (ratio !== undefined && sampler.endsWith('traceidratio')) {
    samplerRatio = Number(ratio);
    if (!/^\d*\.?\d+$/.test(ratio) || samplerRatio > 1) {
      problems.push(`  OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1 (got ${JSON.stringify(ratio)})`);
      samplerRatio = 1;
    }
  }
  const diagLevel = oneOf('OTEL_LOG_LEVEL', DIAG_LEVELS, 'warn');

  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n${problems.join('\n')}`);

  const exporting =
    exporters.length > 0 ? exporters.includes('otlp') : ENDPOINT_VARIABLES.some((name) => value(name));
  return {
    disabled,
    otlp: exporting ? { protocol } : undefined,
    sampler,
    samplerRatio,
    serviceName: value('OTEL_SERVICE_NAME'),
    diagLevel,
  };
}

/** `key=value` pairs as the OTLP exporters read them (values may be percent-encoded). */
function validHeaderList(text: string): boolean {
  return text
    .split(',')
    .filter((pair) => pair.trim() !== '')
    .every((pair) => {
      const at = pair.indexOf('=');
      return at > 0 && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(pair.slice(0, at).trim());
    });
}
