import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { booleanFlag, ConfigError, csv, durationMs, loadConfig, port } from './index';

const schema = z.object({
  PORT: port(3000),
  TIMEOUT_MS: durationMs(500),
  VERBOSE: booleanFlag(false),
  MODE: z.enum(['sync', 'async']).default('sync'),
  PATTERNS: csv(),
  API_TOKEN: z.string().min(8, 'must be at least 8 characters').optional(),
});

const dir = mkdtempSync(join(tmpdir(), 'config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadConfig', () => {
  it('applies defaults and coerces environment strings', () => {
    expect(loadConfig(schema, { env: {} })).toEqual({
      PORT: 3000,
      TIMEOUT_MS: 500,
      VERBOSE: false,
      MODE: 'sync',
      PATTERNS: [],
    });
    const config = loadConfig(schema, { env: { PORT: '8080', VERBOSE: 'yes', PATTERNS: 'a/*, b ,,' } });
    expect(config).toMatchObject({ PORT: 8080, VERBOSE: true, PATTERNS: ['a/*', 'b'] });
  });

  it('names every wrong variable and stops', () => {
    const load = () => loadConfig(schema, { env: { PORT: 'eighty', TIMEOUT_MS: '-1', MODE: 'fast' } });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/PORT: .*"eighty"/);
    expect(load).toThrow(/TIMEOUT_MS: must be greater than 0/);
    expect(load).toThrow(/MODE: /);
  });

  it('never echoes a secret value', () => {
    try {
      loadConfig(schema, { env: { API_TOKEN: 'short' } });
      expect.fail('should have thrown');
    } catch (error) {
      expect(String(error)).toMatch(/API_TOKEN: must be at least 8 characters/);
      expect(String(error)).not.toContain('short');
    }
  });

  it('never echoes URL userinfo or a secret of another variable', () => {
    const withUrls = schema.extend({
      UPSTREAM: z.string().regex(/^https?:\/\/\S+$/, 'must be an http URL'),
      REDIS_URL: z.string().regex(/^redis:\/\//, 'must be a redis:// URL'),
      MONGODB_URI: z.string().regex(/^mongodb:\/\//, 'must be a mongodb:// URL'),
      LABEL: z.string().max(3, 'must be brief'),
    });
    const env = {
      UPSTREAM: 'http://bob:hunter2@bad host',
      REDIS_URL: 'http://redisuser:redispass@127.0.0.1:6379',
      MONGODB_URI: 'mongo://mongouser:mongopass@db',
      API_TOKEN: 'short',
      LABEL: 'mentions hunter2 and mongopass',
    };
    let message = '';
    try {
      loadConfig(withUrls, { env });
    } catch (error) {
      message = String(error);
    }
    expect(message).toMatch(/UPSTREAM: must be an http URL \(got "http:\/\/xxxxx@bad host"\)/);
    expect(message).toMatch(/REDIS_URL: must be a redis:\/\/ URL \(got "http:\/\/xxxxx@127\.0\.0\.1:6379"\)/);
    expect(message).toMatch(/MONGODB_URI: must be a mongodb:\/\/ URL \(got "<redacted>"\)/);
    expect(message).toMatch(/LABEL: must be brief \(got "mentions \[redacted\] and \[redacted\]"\)/);
    for (const secret of ['bob', 'hunter2', 'redisuser', 'redispass', 'mongouser', 'mongopass', 'short']) {
      expect(message).not.toContain(secret);
    }
  });

  it('does not quote a malformed CONFIG_FILE, which may hold tokens', () => {
    const file = join(dir, 'leaky.json');
    writeFileSync(file, '{"API_TOKEN": "file-token-0123456789" "PORT": 1}');
    let message = '';
    try {
      loadConfig(schema, { env: { CONFIG_FILE: file } });
    } catch (error) {
      message = String(error);
    }
    expect(message).toMatch(/CONFIG_FILE: .*leaky\.json is not valid JSON \(at position \d+\)/);
    expect(message).not.toContain('file-token');
  });

  it('reads a JSON file named by CONFIG_FILE, with the environment winning', () => {
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ PORT: 9000, MODE: 'async' }));
    expect(loadConfig(schema, { env: { CONFIG_FILE: file, MODE: 'sync' } })).toMatchObject({
      PORT: 9000,
      MODE: 'sync',
    });
  });

  it('rejects unreadable, malformed and unknown-key files by naming CONFIG_FILE', () => {
    expect(() => loadConfig(schema, { env: { CONFIG_FILE: join(dir, 'missing.json') } })).toThrow(
      /CONFIG_FILE: cannot read/,
    );
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ nope');
    expect(() => loadConfig(schema, { env: { CONFIG_FILE: bad } })).toThrow(/CONFIG_FILE: .* not valid JSON/);
    const unknown = join(dir, 'unknown.json');
    writeFileSync(unknown, JSON.stringify({ PROT: 1 }));
    expect(() => loadConfig(schema, { env: { CONFIG_FILE: unknown } })).toThrow(
      /unknown variable\(s\) .*PROT/,
    );
  });
});
