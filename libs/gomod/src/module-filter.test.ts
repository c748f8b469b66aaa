import { describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { ModuleFilter } from './index';

describe('ModuleFilter', () => {
  it('serves every module when nothing is configured', () => {
    const filter = new ModuleFilter();
    expect(filter.active).toBe(false);
    expect(filter.allows('github.com/anything/at/all')).toBe(true);
    expect(new ModuleFilter({ allow: ',', deny: '' }).active).toBe(false);
  });

  it('refuses denied modules and, with an allow list, everything outside it; deny wins', () => {
    const filter = new ModuleFilter({
      allow: 'github.com/corp,*.corp.example',
      deny: 'github.com/corp/secret,evil.test',
    });
    expect(filter.active).toBe(true);
    expect(filter.refusal('github.com/corp/lib')).toBeUndefined();
    expect(filter.refusal('git.corp.example/team/x')).toBeUndefined();
    expect(filter.refusal('github.com/corp/secret')).toBe('denied');
    expect(filter.refusal('github.com/corp/secret/v2')).toBe('denied');
    expect(filter.refusal('github.com/corp/secretive')).toBeUndefined();
    expect(filter.refusal('github.com/other/lib')).toBe('not-allowed');
    expect(filter.refusal('evil.test/x')).toBe('denied');
  });

  it('with only a deny list serves the rest', () => {
    const filter = new ModuleFilter({ deny: 'evil.test' });
    expect(filter.allows('good.test/x')).toBe(true);
    expect(filter.allows('evil.test/x')).toBe(false);
  });

  it('check() throws forbidden naming the module', () => {
    const filter = new ModuleFilter({ deny: 'evil.test' });
    expect(() => filter.check('test.op', 'good.test/x')).not.toThrow();
    let thrown: unknown;
    try {
      filter.check('test.op', 'evil.test/x', 'v1.0.0');
    } catch (error) {
      thrown = error;
    }
    expect(isModuleError(thrown, 'forbidden')).toBe(true);
    expect((thrown as Error).message).toBe("module evil.test/x is denied by this server's module filter");
  });
});
