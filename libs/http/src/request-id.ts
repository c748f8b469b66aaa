import { randomUUID } from 'node:crypto';

/** The header a request id comes in and goes back out in. */
export const REQUEST_ID_HEADER = 'X-Request-Id';

/**
 * What an incoming id may look like to be kept: what request ids are made of (UUIDs, hex,
 * base64, ULIDs, `prefix:id`), bounded. Anything else (a list of several, control characters,
 * a novel) is replaced, as it would be copied into every log line of the request.
 */
const SANE_REQUEST_ID = /^[A-Za-z0-9._~:+/=-]{1,128}$/;

/** The request's id: the client's or load balancer's `X-Request-Id` when it is sane, a new UUID otherwise. */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && SANE_REQUEST_ID.test(header) ? header : randomUUID();
}
