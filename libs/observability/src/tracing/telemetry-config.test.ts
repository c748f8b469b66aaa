import { describe, expect, it } from 'vitest';
import { ConfigError } from '@modproxy/config';
import { telemetrySecrets } from '../telemetry-secrets';
import { readTelemetryConfig } from './telemetry-config';

function configError(env: Record<string, string>): string {
  try {
    readTelemetryConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('no ConfigError');
}

describe('readTelemetryConfig', () => {
  it('exports nothing when no OTLP variable is set', () => {
    expect(readTelemetryConfig({})).toEqual({
      disabled: false,
      otlp: undefined,
      sampler: 'parentbased_always_on',
      samplerRatio: 1,
      serviceName: undefined,
      diagLevel: 'warn',
    });
    // Empty values count as unset, as for the apps' own variables.
    expect(
      readTelemetryConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_TRACES_EXPORTER: '' }).otlp,
    ).toBeUndefined();
  });

  it('exports over OTLP when an endpoint is set, or when OTEL_TRACES_EXPORTER says otlp', () => {
    expect(readTelemetryConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).otlp).toEqual({
      protocol: 'http/protobuf',
    });
    expect(
      readTelemetryConfig({
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://collector.example/v1/traces',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      }).otlp,
    ).toEqual({ protocol: 'http/json' });
    expect(readTelemetryConfig({ OTEL_TRACES_EXPORTER: 'otlp' }).otlp).toEqual({ protocol: 'http/protobuf' });
  });

  it('exports nothing with OTEL_TRACES_EXPORTER=none, even with an endpoint', () => {
    expect(
      readTelemetryConfig({
        OTEL_TRACES_EXPORTER: 'none',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      }).otlp,
    ).toBeUndefined();
  });

  it('names every wrong variable in one error', () => {
    const message = configError({
      OTEL_TRACES_EXPORTER: 'zipkin',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http',
      OTEL_TRACES_SAMPLER: 'sometimes',
      OTEL_EXPORTER_OTLP_TIMEOUT: '10s',
      OTEL_SDK_DISABLED: 'maybe',
      OTEL_LOG_LEVEL: 'loud',
    });
    for (const variable of [
      'OTEL_TRACES_EXPORTER: must be otlp or none',
      'OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:// or https:// URL',
      'OTEL_EXPORTER_OTLP_PROTOCOL: must be one of http/protobuf, http/json, grpc',
      'OTEL_TRACES_SAMPLER: must be one of',
      'OTEL_EXPORTER_OTLP_TIMEOUT: must be a whole number',
      'OTEL_SDK_DISABLED: must be one of true, false',
      'OTEL_LOG_LEVEL: must be one of',
    ]) {
      expect(message).toContain(variable);
    }
    expect(configError({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' })).toContain(
      'OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1',
    );
    expect(configError({ OTEL_TRACES_EXPORTER: 'otlp,none' })).toContain('OTEL_TRACES_EXPORTER');
  });

  it('never echoes a header value or an endpoint userinfo', () => {
    const message = configError({
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization Bearer s3cret-collector-key',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'ftp://trace-user:trace-pass@collector:21',
    });
    expect(message).toContain(
      'OTEL_EXPORTER_OTLP_HEADERS: must be a comma-separated list of key=value pairs',
    );
    expect(message).toContain('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
    expect(message).not.toMatch(/s3cret-collector-key|trace-user|trace-pass/);
  });

  it('reads the sampler, its ratio, the service name and the SDK switch', () => {
    expect(
      readTelemetryConfig({
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
        OTEL_SERVICE_NAME: 'proxy-eu',
        OTEL_SDK_DISABLED: 'true',
      }),
    ).toMatchObject({
      sampler: 'parentbased_traceidratio',
      samplerRatio: 0.25,
      serviceName: 'proxy-eu',
      disabled: true,
    });
  });
});

describe('telemetrySecrets', () => {
  it('holds every OTLP header value, its credentials, and the endpoints’ userinfo', () => {
    const secrets = telemetrySecrets({
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20collector-token-123,x-team=team-key-456',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-api-key=api-key-789',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel-user:otel-pass@collector.example:4318',
    });
    for (const secret of [
      'Bearer%20collector-token-123',
      'Bearer collector-token-123',
      'collector-token-123',
      'team-key-456',
      'api-key-789',
      'otel-user',
      'otel-pass',
    ]) {
      expect(secrets).toContain(secret);
    }
    expect(telemetrySecrets({})).toEqual([]);
  });
});
