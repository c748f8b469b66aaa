import { describe, expect, it } from 'vitest';
import { configSecrets, isSecretVariable, redactedBase, redactText, SecretRedactor } from './index';

describe('redactedBase and redactText', () => {
  it('hide the user name as well as the password', () => {
    expect(redactedBase(new URL('http://alice:s3cretpw@127.0.0.1:8081/go/'))).toBe(
      'http://xxxxx@127.0.0.1:8081/go',
    );
    expect(redactedBase(new URL('https://alice@proxy.example'))).toBe('https://xxxxx@proxy.example');
    expect(redactedBase(new URL('https://proxy.example/'))).toBe('https://proxy.example');
    expect(redactText('got "http://bob:hunter2@bad host" and redis://:pw@r:6379/0')).toBe(
      'got "http://xxxxx@bad host" and redis://xxxxx@r:6379/0',
    );
  });

  it('leave GOPROXY paths alone: /@v/ is not userinfo', () => {
    const url = 'https://proxy.golang.org/github.com/gin-gonic/gin/@v/list';
    expect(redactText(url)).toBe(url);
    expect(redactText('mongodb://u%40x:p%2Fw@db:27017/?authSource=admin')).toBe(
      'mongodb://xxxxx@db:27017/?authSource=admin',
    );
  });
});

describe('configSecrets', () => {
  it('collects tokens, Authorization credentials and URL userinfo in every form they are shown', () => {
    const secrets = configSecrets({
      STORAGE_TOKEN: 'storage-token-0123456789',
      UPSTREAM_AUTHORIZATION: 'Basic ' + Buffer.from('carl:basicpw').toString('base64'),
      UPSTREAM: 'http://alice:s3cret%40pw@127.0.0.1:1|https://bob@b.example,direct',
      REDIS_URL: 'redis://:redispass@127.0.0.1:6379',
      MONGODB_URI: 'mongodb://car/ol:mongopw@db:27017/',
      PATTERNS: ['https://dave:davepw@c.example'],
      PORT: 3000,
      HOST: '127.0.0.1',
    });
    for (const secret of [
      'storage-token-0123456789',
      'carl',
      'basicpw',
      'alice',
      's3cret%40pw',
      's3cret@pw',
      Buffer.from('alice:s3cret@pw').toString('base64'),
      'bob',
      Buffer.from('bob:').toString('base64'),
      'redispass',
      'car/ol',
      'mongopw',
      'dave',
      'davepw',
    ]) {
      expect(secrets).toContain(secret);
    }
    expect(secrets).not.toContain('127.0.0.1');
    expect(secrets).not.toContain('direct');
    expect(secrets).not.toContain('');
  });

  it('takes whole values only from secret variables', () => {
    expect(
      ['STORAGE_TOKEN', 'GRPC_TOKEN', 'LATHENS_GRPC_TOKEN', 'UPSTREAM_AUTHORIZATION'].every(isSecretVariable),
    ).toBe(true);
    expect(['KEY_PREFIX', 'TLS_KEY_FILE', 'UPSTREAM', 'TOKENS_DIR'].some(isSecretVariable)).toBe(false);
  });
});

describe('SecretRedactor', () => {
  const redactor = new SecretRedactor(['tok-0123456789abcdef', 'na"me\\x', 'go', 'nalice']);

  it('replaces known values and URL userinfo in plain text', () => {
    expect(redactor.redact('Bearer tok-0123456789abcdef from http://u:p@h/x; go on')).toBe(
      'Bearer [redacted] from http://xxxxx@h/x; go on',
    );
  });

  it('keeps a JSON line valid whatever the secret looks like', () => {
    const line = JSON.stringify({
      msg: 'failed',
      err: 'quoted na"me\\x and tok-0123456789abcdef',
      nested: { url: 'http://alice:pw@host/@v/list' },
      text: 'line\nalice',
      nalice: 1,
    });
    const out = redactor.redactJson(line);
    const parsed = JSON.parse(out) as Record<string, unknown>;
    expect(parsed['err']).toBe('quoted [redacted] and [redacted]');
    expect(parsed['nested']).toEqual({ url: 'http://xxxxx@host/@v/list' });
    // `\n` followed by "alice" is not the secret "nalice".
    expect(parsed['text']).toBe('line\nalice');
    expect(out).not.toContain('tok-0123456789abcdef');
  });

  it('also finds a secret percent-encoded', () => {
    const basic = new SecretRedactor(['YWxpY2U6czNjcmV0+/=']);
    expect(basic.redact('Location: /x?auth=Basic%20YWxpY2U6czNjcmV0%2B%2F%3D')).toBe(
      'Location: /x?auth=Basic%20[redacted]',
    );
  });

  it('does not hide values too short to tell from ordinary words', () => {
    expect(redactor.redact('go build')).toBe('go build');
  });
});
