import { errors, type ModuleError, type ModuleErrorOptions } from '@modproxy/errors';
import type { HttpFailure } from './http-failure';
import { SecretRedactor } from '@modproxy/config';

/** One call to an upstream proxy, as its errors name it. */
export interface GoproxyCall {
  op: string;
  module: string;
  version?: string;
  /** What was asked for: `list`, `latest`, `.info`, `.mod` or `.zip`. */
  file: string;
}

/** What of an upstream's answer an error needs. */
export interface AnswerSummary {
  status: number;
  statusText: string;
  url: URL;
  retryAfter: string | undefined;
}

/** How much of an error body goes into the detail. */
const EXCERPT_CHARS = 200;
/** The longest wait an upstream can ask for through Retry-After that is passed on. */
const MAX_RETRY_AFTER_SECONDS = 3600;

/**
 * The errors of an upstream proxy, split for their two readers. The message, which a client
 * reads, names the module, the version and what happened ("not found upstream", "upstream
 * failed: 503", "upstream timed out"), never the upstream's URL or what it answered: both can
 * carry secrets or internal names. The detail, which only operators read in the logs, has the
 * URL without userinfo or query, the status and an excerpt of the body, with the upstream's
 * credentials scrubbed from it.
 */
export class GoproxyFailures {
  private readonly redactor: SecretRedactor;

  /** `secrets`: every credential the upstream is sent (scrubbed from details, percent-encoded too). */
  constructor(secrets: readonly string[]) {
    this.redactor = new SecretRedactor(secrets);
  }

  /** A non-2xx answer: 404 and 410 say "we do not have it", anything else is a gateway failure. */
  status(call: GoproxyCall, answer: AnswerSummary, body: string, truncated: boolean): ModuleError {
    const excerpt = this.excerpt(body, truncated);
    const reason = this.scrub(answer.statusText).slice(0, 60);
    const detail =
      `GET ${safeUrl(answer.url)}: ${answer.status}${reason === '' ? '' : ` ${reason}`}` +
      (excerpt === '' ? '' : `: ${excerpt}`);
    if (answer.status === 404)
      return errors.notFound(call.op, this.message(call, 'not found upstream'), this.options(call, detail));
    if (answer.status === 410)
      return errors.gone(call.op, this.message(call, 'gone upstream'), this.options(call, detail));
    const retryAfterSeconds =
      answer.status === 429 || answer.status >= 500 ? parseRetryAfter(answer.retryAfter) : undefined;
    const what =
      answer.status >= 300 && answer.status < 400
        ? `upstream failed: ${answer.status} (a redirect without a Location)`
        : `upstream failed: ${answer.status}`;
    return errors.badGateway(call.op, this.message(call, what), {
      ...this.options(call, detail),
      ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    });
  }

  /** A failed exchange: a silence is a timeout, anything else a gateway failure. */
  wire(call: GoproxyCall, url: URL, failure: HttpFailure): ModuleError {
    const detail = `GET ${safeUrl(url)}: ${this.scrub(failure.detail)}`;
    const options = { ...this.options(call, detail), cause: failure };
    if (failure.reason === 'timeout') {
      return errors.timeout(call.op, this.message(call, `upstream timed out (${failure.message})`), options);
    }
    return errors.badGateway(call.op, this.message(call, `upstream failed: ${failure.message}`), options);
  }

  /** The call's own deadline passed. */
  deadline(call: GoproxyCall, url: URL, timeoutMs: number, cause: unknown): ModuleError {
    const detail = `GET ${safeUrl(url)}: no complete answer within ${timeoutMs} ms`;
    return errors.timeout(
      call.op,
      this.message(call, `upstream timed out (no complete answer within ${timeoutMs} ms)`),
      { ...this.options(call, detail), cause },
    );
  }

  /** The caller's deadline (e.g. the whole fetch's) passed while this call was running. */
  callerDeadline(call: GoproxyCall, url: URL, cause: unknown): ModuleError {
    const detail = `GET ${safeUrl(url)}: the caller's deadline passed`;
    return errors.timeout(call.op, this.message(call, 'upstream timed out'), {
      ...this.options(call, detail),
      cause,
    });
  }

  cancelled(call: GoproxyCall, url: URL, cause: unknown): ModuleError {
    const detail = `GET ${safeUrl(url)}: cancelled by the caller`;
    return errors.cancelled(call.op, this.message(call, 'cancelled by the caller'), {
      ...this.options(call, detail),
      cause,
    });
  }

  /** A 2xx answer we will not use (not JSON, the wrong version, too large). */
  badAnswer(call: GoproxyCall, url: URL, what: string, cause?: unknown): ModuleError {
    const detail = `GET ${safeUrl(url)}: ${what}`;
    return errors.badGateway(call.op, this.message(call, `upstream failed: ${what}`), {
      ...this.options(call, detail),
      ...(cause === undefined ? {} : { cause }),
    });
  }

  private message(call: GoproxyCall, what: string): string {
    const subject = call.version === undefined ? call.module : `${call.module}@${call.version}`;
    return `${subject}: ${what} (${call.file})`;
  }

  private options(call: GoproxyCall, detail: string): ModuleErrorOptions {
    return { module: call.module, version: call.version, detail };
  }

  private excerpt(body: string, truncated: boolean): string {
    const oneLine = this.scrub(
      body
        .replace(/[\u0000-\u001f\u007f]+/g, ' ')
        .replace(/\s+/g, ' ')
        .trim(),
    );
    if (oneLine.length <= EXCERPT_CHARS && !truncated) return oneLine;
    return `${oneLine.slice(0, EXCERPT_CHARS)}…`;
  }

  /** Removes the upstream's credentials (an upstream may echo them) and any URL userinfo. */
  private scrub(text: string): string {
    return this.redactor.redact(text);
  }
}

/** An upstream URL as operators see it: no userinfo, no query (it may hold a signature). */
export function safeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/**
 * Retry-After in seconds (`120`) or as an HTTP-date, as a number of seconds from now (at most
 * an hour); `undefined` when absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  let seconds: number;
  if (/^\d+$/.test(text)) seconds = Number(text);
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    seconds = Math.ceil((at - now) / 1000);
  }
  return Math.min(Math.max(seconds, 0), MAX_RETRY_AFTER_SECONDS);
}
