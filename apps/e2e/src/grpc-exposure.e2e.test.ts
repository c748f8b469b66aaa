import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appNodeArgs, runCommand } from '@modproxy/testing';

const root = join(__dirname, '..', '..', '..');
const main = (app: string) => join(root, 'dist', 'apps', app, 'main.js');

/**
 * A gRPC server that any machine can reach must say who may call it: without a token the
 * process refuses to start (exit 2, a message naming the variables), unless configuration says
 * explicitly that the network is protected otherwise. Configuration is checked before anything
 * binds, so these processes never listen.
 */
describe('gRPC servers exposed without a token', () => {
  const base = { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'warn' };

  it.each([
    ['storage', { GRPC_HOST: '0.0.0.0', STORAGE_BACKEND: 'memory' }, 'STORAGE_TOKEN'],
    ['storage', { GRPC_HOST: '::', STORAGE_BACKEND: 'memory' }, 'STORAGE_TOKEN'],
    ['lathens', { HOST: '0.0.0.0', STORAGE_TYPE: 'none' }, 'GRPC_TOKEN'],
    ['lathens', { HOST: '10.1.2.3', STORAGE_TYPE: 'none' }, 'GRPC_TOKEN'],
  ])('%s on %o refuses to start and names %s', async (app, env, variable) => {
    const result = await runCommand(process.execPath, appNodeArgs(main(app)), {
      cwd: root,
      env: { ...base, ...env },
    });
    expect(result.exitCode, result.stderr).toBe(2);
    expect(result.stderr).toContain(`${variable}: is required when`);
    expect(result.stderr).toContain('GRPC_ALLOW_UNAUTHENTICATED=true');
    expect(result.stdout).not.toMatch(/listening/);
  });

  it.each([
    ['storage', { GRPC_HOST: '0.0.0.0', GRPC_ALLOW_UNAUTHENTICATED: 'maybe' }, 'GRPC_ALLOW_UNAUTHENTICATED'],
    ['lathens', { TLS_CERT_FILE: '/nonexistent/cert.pem' }, 'TLS_KEY_FILE'],
  ])('%s refuses a wrong value: %o names %s', async (app, env, variable) => {
    const result = await runCommand(process.execPath, appNodeArgs(main(app)), {
      cwd: root,
      env: { ...base, ...env },
    });
    expect(result.exitCode, result.stderr).toBe(2);
    expect(result.stderr).toContain(`${variable}: `);
  });
});
