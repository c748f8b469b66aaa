import type { ServerResponse } from 'node:http';
import { redactText } from '@modproxy/config';
import { httpStatusForKind, isModuleError, type ModuleError } from '@modproxy/errors';
import type { Logger } from '@modproxy/observability';

/**
 * The one error mapping of every HTTP service here, on a bare node:http response (Express's
 * error handler and the proxy's lean GOPROXY path both end here): a domain error becomes its
 * status with a text/plain body the go command prints, `Retry-After` when it says when to try
 * again, and a log line for 5xx with the operator-only detail; anything else is a logged 500
 * without details. Once the headers are out, the response can only be cut off.
 */
export function answerError(res: ServerResponse, error: unknown, logger: Logger, path: string): void {
  if (isModuleError(error)) {
    const status = httpStatusForKind(error.kind);
    if (status >= 500) {
      logger[error.kind === 'internal' ? 'error' : 'warn'](
        {
          kind: error.kind,
          op: error.op,
          module: error.module,
          version: error.version,
          detail: error.detail,
          err: error.message,
          path,
        },
        'request failed',
      );
    }
    if (res.headersSent) return void res.destroy();
    if (error.retryAfterSeconds !== undefined) {
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil(error.retryAfterSeconds))));
    }
    // An internal failure's message is ours (file paths, database errors): logged, not sent.
    if (error.kind === 'internal') return writeText(res, status, `${internalErrorText(error)}\n`);
    // The message is the client's; an adapter's text quoting a URL still loses its userinfo.
    return writeText(res, status, `${redactText(error.message)}\n`);
  }
  logger.error({ err: error, path }, 'unexpected error');
  if (res.headersSent) return void res.destroy();
  writeText(res, 500, 'internal error\n');
}

/** A text/plain answer (no-store for errors); a HEAD answer carries the headers only. */
export function writeText(res: ServerResponse, status: number, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  if (status >= 400) res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

function internalErrorText(error: ModuleError): string {
  const subject = error.module ? `${error.module}${error.version ? `@${error.version}` : ''}: ` : '';
  return `${subject}internal error (the server logged the details)`;
}
