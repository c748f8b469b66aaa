import { describe, expect, it } from 'vitest';
import { loadLathensConfig } from './config';

describe('lathens configuration of its gRPC server', () => {
  it('serves without a token on loopback, and on other addresses only when explicitly allowed or with a token', () => {
    expect(loadLathensConfig({ env: {} }).HOST).toBe('127.0.0.1');
    expect(() => loadLathensConfig({ env: { HOST: '0.0.0.0' } })).toThrow(
      /GRPC_TOKEN: is required when HOST \(0\.0\.0\.0\) is not a loopback address/,
    );
    expect(
      loadLathensConfig({ env: { HOST: '0.0.0.0', GRPC_ALLOW_UNAUTHENTICATED: 'true' } })
        .GRPC_ALLOW_UNAUTHENTICATED,
    ).toBe(true);
    expect(loadLathensConfig({ env: { HOST: '0.0.0.0', GRPC_TOKEN: 'a-token-of-sixteen-chars' } }).HOST).toBe(
      '0.0.0.0',
    );
  });

  it('takes TLS files only as a pair', () => {
    expect(() => loadLathensConfig({ env: { TLS_KEY_FILE: 'key.pem' } })).toThrow(
      /TLS_CERT_FILE: TLS_CERT_FILE and TLS_KEY_FILE go together/,
    );
  });
});
