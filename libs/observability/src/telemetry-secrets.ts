import { configSecrets } from '@modproxy/config';

/** OTLP headers usually carry a collector's API key (`authorization=Bearer …`, `x-api-key=…`). */
const HEADER_VARIABLES = ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS'];
const ENDPOINT_VARIABLES = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'];

/**
 * The secrets the OpenTelemetry variables hold, for the process's {@link SecretRedactor}: every
 * OTLP header value (as written, percent-decoded, and an Authorization value's credentials) and
 * the userinfo of the endpoint URLs. The apps' configuration schemas do not hold these
 * variables, so `configSecrets` of the configuration alone would miss them.
 */
export function telemetrySecrets(env: Readonly<Record<string, string | undefined>> = process.env): string[] {
  const found: Record<string, string[]> = {};
  for (const name of ENDPOINT_VARIABLES) {
    const value = env[name];
    if (value) found[name] = [value];
  }
  for (const name of HEADER_VARIABLES) {
    let index = 0;
    for (const pair of (env[name] ?? '').split(',')) {
      const at = pair.indexOf('=');
      if (at < 0) continue;
      const raw = pair.slice(at + 1).trim();
      // Named as a secret variable, so configSecrets takes the whole value and its credentials.
      found[`${name}_${index++}_AUTHORIZATION`] = [raw, safeDecode(raw)];
    }
  }
  return configSecrets(found);
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
