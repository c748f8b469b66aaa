import { register } from 'node:module';
import { diag, DiagLogLevel, type DiagLogger } from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  NoopSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { createAddHookMessageChannel } from 'import-in-the-middle';
import { ConfigError, redactText, SecretRedactor } from '@modproxy/config';
import { createLogger, type Logger } from '../logger';
import { telemetrySecrets } from '../telemetry-secrets';
import { HealthCheckSampler } from './health-check-sampler';
import { createInstrumentations } from './instrumentations';
import { readTelemetryConfig, type DiagLevel, type TelemetryConfig } from './telemetry-config';

export interface StartTracingOptions {
  /** The app name: the spans' `service.name` unless `OTEL_SERVICE_NAME` says otherwise. */
  service: string;
  /** Default: `process.env`. */
  env?: NodeJS.ProcessEnv;
}

export interface Tracing {
  config: TelemetryConfig;
  /** Flushes and stops span export. */
  shutdown(): Promise<void>;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** An attribute longer than this is cut (a BullMQ script's arguments, a long URL). */
const ATTRIBUTE_VALUE_LENGTH_LIMIT = 2048;

/**
 * Sets up tracing for the whole process; must run before the app's modules are imported (the
 * app is an ES module bundle, so its imports are hooked through import-in-the-middle, and only
 * imports evaluated after the hook is registered are instrumented). Validates the OpenTelemetry
 * variables first: a wrong one throws a ConfigError naming it.
 *
 * Spans are always made (so log lines carry trace ids and `traceparent` goes on to the next
 * service), and exported only when OTLP is configured; otherwise no exporter exists and no
 * connection is attempted. Metrics and logs are never sent over OTLP: Prometheus scrapes the
 * apps, and the logs are JSON on stdout.
 */
export async function startTracing(options: StartTracingOptions): Promise<Tracing | undefined> {
  const env = options.env ?? process.env;
  const config = readTelemetryConfig(env);
  if (config.disabled) return undefined;

  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);

  const redactor = new SecretRedactor(telemetrySecrets(env));
  // The SDK's reports pass OTEL_LOG_LEVEL's filter only; our own lines follow LOG_LEVEL (the
  // app validates it later: an unknown one means the default here).
  const diagLines = createLogger({ service: options.service, level: 'trace', redactor });
  const requested = env['LOG_LEVEL']?.trim().toLowerCase() ?? '';
  const logger = createLogger({
    service: options.service,
    level: LOG_LEVELS.includes(requested) ? requested : 'info',
    redactor,
  });
  const diagOptions = { logLevel: DIAG_LEVELS[config.diagLevel], suppressOverrideMessage: true };
  diag.setLogger(diagLogger(diagLines), diagOptions);
  const instrumentations = createInstrumentations();

  const spanProcessors: SpanProcessor[] | undefined = config.otlp ? undefined : [new NoopSpanProcessor()];
  const limitFromEnv =
    env['OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT'] ?? env['OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT'];
  // With OTEL_LOG_LEVEL set, the SDK installs a console logger of its own (plain text on
  // stdout, between JSON lines): ours goes back once it is built.
  diag.disable();
  const sdk = new NodeSDK({
    // OTEL_SERVICE_NAME reaches the resource through the SDK's environment detector.
    ...(config.serviceName ? {} : { serviceName: options.service }),
    instrumentations,
    sampler: new HealthCheckSampler(rootSampler(config)),
    // Without processors the SDK would make them from the environment: the OTLP exporter the
    // validated variables describe, the only case where we leave that to it.
    ...(spanProcessors ? { spanProcessors } : {}),
    ...(limitFromEnv ? {} : { spanLimits: { attributeValueLengthLimit: ATTRIBUTE_VALUE_LENGTH_LIMIT } }),
    // Empty, not absent: absent means "from the environment", whose default is OTLP to localhost.
    metricReaders: [],
    logRecordProcessors: [],
  });
  diag.setLogger(diagLogger(diagLines), diagOptions);
  sdk.start();
  await waitForAllMessagesAcknowledged();
  logger.debug(
    { otlp: config.otlp?.protocol ?? 'off', sampler: config.sampler },
    config.otlp ? 'tracing: spans exported over OTLP' : 'tracing: spans not exported (no OTLP configured)',
  );
  return { config, shutdown: () => sdk.shutdown() };
}

function rootSampler(config: TelemetryConfig): Sampler {
  switch (config.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(config.samplerRatio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.samplerRatio) });
  }
}

const DIAG_LEVELS: Record<DiagLevel, DiagLogLevel> = {
  none: DiagLogLevel.NONE,
  error: DiagLogLevel.ERROR,
  warn: DiagLogLevel.WARN,
  info: DiagLogLevel.INFO,
  debug: DiagLogLevel.DEBUG,
  verbose: DiagLogLevel.VERBOSE,
  all: DiagLogLevel.ALL,
};

/** The SDK's own reports (an export that failed) as JSON log lines like the app's. */
function diagLogger(logger: Logger): DiagLogger {
  const write =
    (level: 'error' | 'warn' | 'info' | 'debug' | 'trace') =>
    (message: string, ...args: unknown[]) => {
      const err = args.find((arg) => arg instanceof Error);
      const rest = args
        .filter((arg) => arg !== err)
        .map((arg) => (typeof arg === 'string' ? arg : safeJson(arg)));
      logger[level](
        { component: 'opentelemetry', ...(err ? { err } : {}), ...(rest.length ? { args: rest } : {}) },
        message,
      );
    };
  return {
    error: write('error'),
    warn: write('warn'),
    info: write('info'),
    debug: write('debug'),
    verbose: write('trace'),
  };
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * What an app's instrument entry runs: {@link startTracing}, with a wrong OpenTelemetry
 * variable stopping start-up as the app's own configuration errors do (exit 2, the variable
 * named). Tracing that fails for any other reason is reported and the app runs untraced.
 */
export async function runInstrumentation(service: string): Promise<void> {
  try {
    await startTracing({ service });
  } catch (error) {
    const message = redactText(error instanceof Error ? error.message : String(error));
    if (error instanceof ConfigError) {
      process.stderr.write(`${service}: ${message}\n`);
      process.exit(2);
    }
    process.stderr.write(`${service}: tracing could not start, running without it: ${message}\n`);
  }
}
