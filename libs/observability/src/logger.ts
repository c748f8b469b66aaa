import { pino, type Logger, type LoggerOptions } from 'pino';
import { REDACTED, SecretRedactor } from '@modproxy/config';
import { currentLogFields } from './log-scope';
import { traceLogFields } from './trace-log-fields';

export type { Logger } from 'pino';

export interface CreateLoggerOptions {
  /** The app name, logged as `service` on every line. */
  service: string;
  /** pino level; default `info`. */
  level?: LoggerOptions['level'];
  /** Where lines go; default stdout. Tests pass a stream to read them back. */
  destination?: NodeJS.WritableStream;
  /**
   * The secrets this process knows (runService builds it from the validated configuration);
   * every line is cleaned of them. Default: none known, URL userinfo is still hidden.
   */
  redactor?: SecretRedactor;
}

/**
 * Structured JSON logs that never carry a secret: fields with well-known secret names are
 * censored, and then every line, whatever field or message holds it, is cleaned of the
 * configuration's secret values and of the userinfo of any URL. A line written inside a span
 * carries its `trace_id` and `span_id`, and inside a request (`withLogFields`) its
 * `request_id`.
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  const redactor = options.redactor ?? new SecretRedactor();
  const config: LoggerOptions = {
    level: options.level ?? 'info',
    base: { service: options.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'token',
        '*.token',
        'authorization',
        '*.authorization',
        'headers.authorization',
        '*.headers.authorization',
        'password',
        '*.password',
        // ioredis attaches the failed command to its errors, AUTH's password included.
        'err.command.args',
      ],
      censor: REDACTED,
    },
    formatters: { level: (label) => ({ level: label }) },
    // Read at every line from the context it is written in, so lines of code that was not
    // handed a request's logger are found by the request's ids too.
    mixin: () => ({ ...traceLogFields(), ...currentLogFields() }),
    hooks: { streamWrite: (line) => redactor.redactJson(line) },
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}
