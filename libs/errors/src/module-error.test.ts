import { describe, expect, it } from 'vitest';
import { errors, httpStatusForKind, isModuleError, ModuleError, toModuleError } from './index';

describe('ModuleError', () => {
  it('carries kind, operation, module and version', () => {
    const err = errors.notFound('storage.disk.info', 'not stored', { module: 'a.b/c', version: 'v1.0.0' });
    expect(err).toBeInstanceOf(ModuleError);
    expect(err).toMatchObject({
      kind: 'not-found',
      op: 'storage.disk.info',
      module: 'a.b/c',
      version: 'v1.0.0',
    });
    expect(isModuleError(err, 'not-found')).toBe(true);
    expect(isModuleError(err, 'gone')).toBe(false);
    expect(isModuleError(new Error('x'))).toBe(false);
  });

  it('translates foreign errors, keeping aborts and deadlines apart', () => {
    expect(toModuleError(new Error('boom'), 'op').kind).toBe('internal');
    const abort = new Error('aborted');
    abort.name = 'AbortError';
    expect(toModuleError(abort, 'op').kind).toBe('cancelled');
    const deadline = new Error('deadline');
    deadline.name = 'TimeoutError';
    expect(toModuleError(deadline, 'op').kind).toBe('timeout');
    const own = errors.gone('op', 'removed');
    expect(toModuleError(own, 'other')).toBe(own);
  });

  it('maps kinds so that only "we do not have it" lets the go command fall through', () => {
    expect(httpStatusForKind('not-found')).toBe(404);
    expect(httpStatusForKind('gone')).toBe(410);
    expect(httpStatusForKind('forbidden')).toBe(403);
    expect(httpStatusForKind('invalid-argument')).toBe(400);
    expect(httpStatusForKind('timeout')).toBe(504);
    expect(httpStatusForKind('bad-gateway')).toBe(502);
    expect(httpStatusForKind('internal')).toBe(500);
  });
});
