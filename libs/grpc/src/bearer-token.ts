import { createHash, timingSafeEqual } from 'node:crypto';
import { Metadata } from '@grpc/grpc-js';

/** Shared-token authentication: `authorization: Bearer <token>` on every call. */
const AUTHORIZATION = 'authorization';
const BEARER = 'Bearer ';

export function bearerMetadata(token: string | undefined): Metadata {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set(AUTHORIZATION, `${BEARER}${token}`);
  return metadata;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * Whether the call carries exactly `token`. Digests of equal length are compared in constant
 * time, so neither the token's content nor its length leaks through response timing.
 */
export function hasBearerToken(metadata: Metadata, token: string): boolean {
  const values = metadata.get(AUTHORIZATION);
  if (values.length !== 1) return false;
  const [value] = values;
  // The scheme name is case-insensitive (RFC 9110, section 11.1); the token is not.
  if (typeof value !== 'string' || value.slice(0, BEARER.length).toLowerCase() !== BEARER.toLowerCase())
    return false;
  return timingSafeEqual(digest(value.slice(BEARER.length)), digest(token));
}
