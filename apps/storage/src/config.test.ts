import { describe, expect, it } from 'vitest';
import { loadStorageConfig } from './config';

describe('storage service configuration', () => {
  it('serves without a token on loopback, and on other addresses only when explicitly allowed or with a token', () => {
    expect(loadStorageConfig({ env: {} }).GRPC_HOST).toBe('127.0.0.1');
    expect(() => loadStorageConfig({ env: { GRPC_HOST: '0.0.0.0' } })).toThrow(
      /STORAGE_TOKEN: is required when GRPC_HOST \(0\.0\.0\.0\) is not a loopback address/,
    );
    expect(
      loadStorageConfig({ env: { GRPC_HOST: '0.0.0.0', GRPC_ALLOW_UNAUTHENTICATED: 'true' } })
        .GRPC_ALLOW_UNAUTHENTICATED,
    ).toBe(true);
    expect(
      loadStorageConfig({ env: { GRPC_HOST: '0.0.0.0', STORAGE_TOKEN: 'a-token-of-sixteen-chars' } })
        .GRPC_HOST,
    ).toBe('0.0.0.0');
  });
});
