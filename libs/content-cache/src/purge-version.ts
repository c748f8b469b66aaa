import { errors, isModuleError, toModuleError, type ModuleError } from '@modproxy/errors';
import type { CallOptions, ModuleStorage, ModuleVersionRef } from '@modproxy/storage';
import type { InvalidationBus } from './invalidation-bus';

/**
 * A purge: the version is deleted from storage, `afterDelete` runs (a cache drops its own copy:
 * after the delete, so that a read which started before it is overtaken and not kept), and the
 * invalidation goes out on the bus to every replica's cache. A version storage did not hold is
 * still invalidated everywhere (a replica may hold what an earlier, half-done purge left), then
 * reported `not-found`. A purge that reached storage but not the bus is `unavailable`: repeat it.
 */
export async function purgeVersion(
  storage: ModuleStorage,
  bus: InvalidationBus,
  ref: ModuleVersionRef,
  options: CallOptions = {},
  afterDelete: () => void = () => undefined,
): Promise<void> {
  const op = 'content-cache.purge';
  let notFound: ModuleError | undefined;
  try {
    await storage.delete(ref.module, ref.version, options);
  } catch (error) {
    if (!isModuleError(error, 'not-found')) throw error;
    notFound = error;
  }
  afterDelete();
  try {
    await bus.publish(ref);
  } catch (error) {
    const failure = toModuleError(error, op, ref);
    throw errors.unavailable(
      op,
      `${ref.module}@${ref.version} is deleted from storage, but other replicas could not be told to drop it; purge it again`,
      { ...ref, retryAfterSeconds: 5, detail: failure.detail ?? failure.message, cause: failure },
    );
  }
  if (notFound) throw notFound;
}
