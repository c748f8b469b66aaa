import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export interface CreateLoggerOptions {
  /** The app name, logged as `service` on every line. */
  service: string;
  /** pino level; default `info`. */
  level?: LoggerOptions['level'];
  /** Where lines go; default stdout. Tests pass a stream to read them back. */
  destination?: NodeJS.WritableStream;
}

/** Structured JSON logs; secrets in well-known fields never reach the output. */
export function createLogger(options: CreateLoggerOptions): Logger {
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
        'password',
        '*.password',
      ],
      censor: '[redacted]',
    },
    formatters: { level: (label) => ({ level: label }) },
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}
