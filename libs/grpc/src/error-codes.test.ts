import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ERROR_KINDS, errors, ModuleError, type ErrorKind } from '@modproxy/errors';
import { bearerMetadata, hasBearerToken } from './bearer-token';
import { ERROR_KIND_METADATA_KEY, fromGrpcError, grpcStatusForKind, toGrpcStatusError } from './error-codes';

const kinds: readonly ErrorKind[] = ERROR_KINDS;

/** What a grpc-js client hands its caller for a status the server sent. */
function received(code: status, details: string, metadata = new Metadata()): ServiceError {
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata });
}

describe('error codes', () => {
  it.each([
    ['invalid-argument', status.INVALID_ARGUMENT],
    ['not-found', status.NOT_FOUND],
    ['gone', status.NOT_FOUND],
    ['forbidden', status.PERMISSION_DENIED],
    ['already-exists', status.ALREADY_EXISTS],
    ['failed-precondition', status.FAILED_PRECONDITION],
    ['cancelled', status.CANCELLED],
    ['timeout', status.DEADLINE_EXCEEDED],
    ['unavailable', status.UNAVAILABLE],
    ['bad-gateway', status.UNAVAILABLE],
    ['internal', status.INTERNAL],
  ] as const)('sends %s as code %s', (kind, code) => {
    expect(grpcStatusForKind(kind)).toBe(code);
  });

  it('brings every kind back exactly, even kinds that share a code', () => {
    for (const kind of kinds) {
      const sent = toGrpcStatusError(new ModuleError(kind, 'server.op', `a ${kind} failure`), 'server.op');
      const back = fromGrpcError(received(sent.code, sent.details, sent.metadata), 'client.op', {
        module: 'm',
      });
      expect(back).toMatchObject({ kind, op: 'client.op', module: 'm', message: `a ${kind} failure` });
    }
  });

  it('maps codes by themselves when the peer sent no kind', () => {
    expect(fromGrpcError(received(status.NOT_FOUND, 'x'), 'op').kind).toBe('not-found');
    expect(fromGrpcError(received(status.DEADLINE_EXCEEDED, 'x'), 'op').kind).toBe('timeout');
    expect(fromGrpcError(received(status.UNAVAILABLE, 'connection refused'), 'op').kind).toBe('unavailable');
    expect(fromGrpcError(received(status.UNAUTHENTICATED, 'x'), 'op').kind).toBe('failed-precondition');
    expect(fromGrpcError(received(status.PERMISSION_DENIED, 'x'), 'op').kind).toBe('failed-precondition');
    expect(fromGrpcError(received(status.UNIMPLEMENTED, 'x'), 'op').kind).toBe('internal');
    expect(fromGrpcError(received(status.UNKNOWN, 'x'), 'op').kind).toBe('internal');
  });

  it('ignores a kind it does not know and falls back to the code', () => {
    const metadata = new Metadata();
    metadata.set(ERROR_KIND_METADATA_KEY, 'teapot');
    expect(fromGrpcError(received(status.ALREADY_EXISTS, 'x', metadata), 'op').kind).toBe('already-exists');
  });

  it('sends foreign errors as INTERNAL and aborts as CANCELLED or DEADLINE_EXCEEDED', () => {
    expect(toGrpcStatusError(new Error('boom'), 'op').code).toBe(status.INTERNAL);
    expect(toGrpcStatusError(new DOMException('gone', 'AbortError'), 'op').code).toBe(status.CANCELLED);
    expect(toGrpcStatusError(new DOMException('late', 'TimeoutError'), 'op').code).toBe(
      status.DEADLINE_EXCEEDED,
    );
    expect(
      toGrpcStatusError(errors.gone('op', 'removed'), 'op').metadata?.get(ERROR_KIND_METADATA_KEY),
    ).toEqual(['gone']);
  });
});

describe('bearer token', () => {
  it('accepts exactly the configured token', () => {
    expect(hasBearerToken(bearerMetadata('s3cret'), 's3cret')).toBe(true);
    expect(hasBearerToken(bearerMetadata('s3cre'), 's3cret')).toBe(false);
    expect(hasBearerToken(bearerMetadata('s3cret '), 's3cret')).toBe(false);
    expect(hasBearerToken(bearerMetadata(undefined), 's3cret')).toBe(false);
    const scheme = new Metadata();
    scheme.set('authorization', 'bearer s3cret');
    expect(hasBearerToken(scheme, 's3cret')).toBe(true);
    scheme.set('authorization', 'bearer S3cret');
    expect(hasBearerToken(scheme, 's3cret')).toBe(false);
    scheme.set('authorization', 'Basic s3cret');
    expect(hasBearerToken(scheme, 's3cret')).toBe(false);
    const twice = bearerMetadata('s3cret');
    twice.add('authorization', 'Bearer s3cret');
    expect(hasBearerToken(twice, 's3cret')).toBe(false);
  });
});
