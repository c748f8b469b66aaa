import { errors, type ModuleError, toModuleError } from '@modproxy/errors';

export interface InfoJson {
  Version: string;
  Time?: string;
}

/**
 * An error of work shared by every caller (a fetch, a query resolution): no caller can cancel
 * it, so a cancellation inside it can only be its own deadline, and is reported as `timeout`.
 */
export function sharedWorkError(error: unknown, op: string, module: string, version: string): ModuleError {
  const failure = toModuleError(error, op, { module, version });
  if (failure.kind !== 'cancelled') return failure;
  return errors.timeout(failure.op, `${module}@${version}: timed out: ${failure.message}`, {
    module: failure.module ?? module,
    version: failure.version ?? version,
    detail: failure.detail,
    cause: failure,
  });
}

/** An upstream `.info`, which must be a JSON object naming a Version. */
export function parseInfo(info: Buffer, op: string, module: string): InfoJson {
  let parsed: unknown;
  try {
    parsed = JSON.parse(info.toString('utf8'));
  } catch {
    throw errors.badGateway(op, 'upstream .info is not JSON', { module });
  }
  if (!parsed || typeof parsed !== 'object' || typeof (parsed as InfoJson).Version !== 'string') {
    throw errors.badGateway(op, 'upstream .info has no Version', { module });
  }
  return parsed as InfoJson;
}
