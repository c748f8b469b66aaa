import { isModuleError, type ModuleError } from '@modproxy/errors';

/** The ModuleError `promise` rejects with; fails the test when it resolves or rejects with anything else. */
export async function moduleErrorOf(promise: Promise<unknown>): Promise<ModuleError> {
  try {
    await promise;
  } catch (error) {
    if (isModuleError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection with a ModuleError');
}
