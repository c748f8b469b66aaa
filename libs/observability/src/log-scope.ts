import { AsyncLocalStorage } from 'node:async_hooks';

/** Fields every log line written inside a scope carries, e.g. `request_id`. */
export type LogFields = Readonly<Record<string, string>>;

// One per process, like OpenTelemetry's context: every logger of the process reads it, and code
// deep under a request (a storage adapter, a fetch) logs with the request's fields without being
// handed a logger made for that request.
const scope = new AsyncLocalStorage<LogFields>();

/** Runs `fn` with `fields` on every log line written inside it (also after it awaits). */
export function withLogFields<T>(fields: LogFields, fn: () => T): T {
  const outer = scope.getStore();
  return scope.run(outer ? { ...outer, ...fields } : fields, fn);
}

/** The fields of the scope the caller runs in; none outside any. */
export function currentLogFields(): LogFields | undefined {
  return scope.getStore();
}
