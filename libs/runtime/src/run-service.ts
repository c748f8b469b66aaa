import { ConfigError, configSecrets, redactText, SecretRedactor } from '@modproxy/config';
import { createLogger, type Logger, shutdownTelemetry, telemetrySecrets } from '@modproxy/observability';

export interface RunningService {
  /** Printed to stdout once the service listens, e.g. the GOPROXY line; nothing when empty. */
  banner: string;
  /** Readiness off, drain, close clients. */
  shutdown(): Promise<void>;
}

export interface RunServiceOptions<C extends { LOG_LEVEL: string }> {
  /** The app name: the log `service` field and the prefix of start-up errors. */
  name: string;
  loadConfig(): C;
  start(config: C, logger: Logger): Promise<RunningService>;
}

/**
 * The process around an app: configuration validated first (a wrong value exits 2 with a
 * message naming the variable, before anything starts), then start, then graceful shutdown on
 * SIGTERM/SIGINT.
 *
 * Everything the process prints passes through one {@link SecretRedactor} made from the
 * validated configuration (and the OTLP exporter's headers): every log line, the banner, and a
 * start-up failure (a driver's error may quote its connection string). Shutdown ends with the
 * tracer provider's flush, so the spans of the last requests are sent.
 */
export function runService<C extends { LOG_LEVEL: string }>(options: RunServiceOptions<C>): void {
  let redact = redactText;
  const fail = (code: number, message: string): never => {
    process.stderr.write(`${options.name}: ${redact(message)}\n`);
    process.exit(code);
  };
  let config: C;
  try {
    config = options.loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) return fail(2, error.message);
    throw error;
  }
  const redactor = new SecretRedactor([...configSecrets(config), ...telemetrySecrets(process.env)]);
  redact = (text) => redactor.redact(text);
  const logger = createLogger({ service: options.name, level: config.LOG_LEVEL, redactor });
  options.start(config, logger).then(
    (service) => {
      let stopping = false;
      // A terminal's Ctrl-C reaches both `npm start` and the app, and npm forwards it again:
      // later signals must not cut the graceful shutdown short.
      const stop = (signal: NodeJS.Signals) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'shutting down');
        // The last spans are flushed after the last requests ended, whatever the outcome.
        service.shutdown().then(
          () => shutdownTelemetry().then(() => process.exit(0)),
          (error: unknown) => {
            logger.error({ err: error }, 'shutdown failed');
            return shutdownTelemetry().then(() => process.exit(1));
          },
        );
      };
      // Before the banner: whoever waits for it may send SIGTERM at once.
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      // A cluster worker has no banner of its own: its primary prints the one line.
      if (service.banner !== '') process.stdout.write(`${redact(service.banner)}\n`);
    },
    (error: unknown) => fail(1, `failed to start: ${error instanceof Error ? error.message : String(error)}`),
  );
}
