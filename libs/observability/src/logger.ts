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
  /**
   * Where lines go; default stdout, written synchronously (see {@link createLogger}). Tests pass
   * a stream to read them back.
   */
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
 *
 * Lines reach stdout synchronously, each written before the call returns. pino's default
 * destination writes asynchronously through libuv's threadpool and, at `process.exit`, writes
 * what it still holds but not the write already handed to a thread: when that thread has not
 * run yet, the line is lost (or printed out of order), and the lines just before an exit (a
 * failed start, shutdown) are those that matter most. Node writes to a pipe or a file
 * synchronously itself on Linux; the cost is a few microseconds a line (by default only
 * warnings and 5xx answers are logged), and a reader that stops reading holds the process up
 * instead of its memory growing without bound.
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
  return pino(config, options.destination ?? pino.destination({ dest: 1, sync: true }));
}
