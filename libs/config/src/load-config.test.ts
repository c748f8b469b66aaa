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
