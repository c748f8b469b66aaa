/**
 * What went wrong on the wire, as the upstream HTTP client reports it:
 * - `timeout`: headers did not arrive, or the body fell silent, within the silence limit;
 * - `redirects`: more redirects than allowed, or a redirect to something that is not http(s);
 * - `truncated`: the connection ended before the whole body (shorter than Content-Length, a
 *   chunked body cut off);
 * - `encoding`: a Content-Encoding we cannot decode, or a compressed body that does not decode;
 * - `closed`: the client was closed;
 * - `transport`: anything else below HTTP (refused, reset, DNS, TLS, a malformed response).
 */
export type HttpFailureReason = 'timeout' | 'redirects' | 'truncated' | 'encoding' | 'closed' | 'transport';

/**
 * A failure of the HTTP exchange itself, before any meaning is given to the answer. `message`
 * is short and safe to show to a client (it never holds a URL); `detail` is for operators.
 */
export class HttpFailure extends Error {
  constructor(
    readonly reason: HttpFailureReason,
    message: string,
    readonly detail: string = message,
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HttpFailure';
  }
}
