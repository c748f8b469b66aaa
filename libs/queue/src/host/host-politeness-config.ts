import { z } from 'zod';
import { durationMs, positiveInt } from '@modproxy/config';
import { HostLimitTable, type HostLimitOverride } from './host-limits';

const ratePerSecond = z.coerce
  .number({ error: 'must be a number of requests per second' })
  .nonnegative('must be 0 (no rate limit) or more')
  .refine(Number.isFinite, 'must be a finite number');

const hostOverride = z.strictObject(
  {
    concurrency: z.number().int('must be a whole number').positive('must be greater than 0').optional(),
    ratePerSecond: ratePerSecond.optional(),
    burst: z.number().int('must be a whole number').positive('must be greater than 0').optional(),
  },
  { error: 'must be an object of concurrency, ratePerSecond and burst' },
);

/** A host name as it appears in a module path or an upstream URL, with an optional port. */
const HOST_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?(:\d{1,5})?$/i;

/** `HOST_LIMITS`: JSON text in the environment, or an object in a `CONFIG_FILE`. */
const hostLimits = z
  .union([z.string(), z.record(z.string(), z.unknown())])
  .default({})
  .transform((value, ctx): Record<string, HostLimitOverride> => {
    let parsed: unknown = value;
    if (typeof value === 'string') {
      try {
        parsed = value.trim() === '' ? {} : JSON.parse(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: `is not valid JSON: ${(error as Error).message}` });
        return z.NEVER;
      }
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      ctx.addIssue({
        code: 'custom',
        message: 'must be a JSON object of host: {concurrency, ratePerSecond, burst}',
      });
      return z.NEVER;
    }
    const overrides: Record<string, HostLimitOverride> = {};
    for (const [host, limit] of Object.entries(parsed)) {
      if (!HOST_NAME.test(host)) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(host)} is not a host name` });
        continue;
      }
      const checked = hostOverride.safeParse(limit);
      if (!checked.success) {
        for (const issue of checked.error.issues) {
          const field = issue.path.length > 0 ? `.${issue.path.join('.')}` : '';
          ctx.addIssue({ code: 'custom', message: `${host}${field}: ${issue.message}` });
        }
        continue;
      }
      overrides[host] = checked.data;
    }
    return overrides;
  });

/**
 * The politeness variables of every app that sends work to source hosts (crathens): spread
 * into the app's schema, so errors name the variable.
 */
export const hostPolitenessConfigShape = {
  /** Requests in flight at once per host, across every worker. */
  HOST_CONCURRENCY: positiveInt(4),
  /** Requests started per second per host (token bucket, burst of one second's worth); 0 for none. */
  HOST_RATE_PER_SECOND: ratePerSecond.default(10),
  /** Per-host overrides: `{"proxy.example":{"concurrency":16,"ratePerSecond":50,"burst":100}}`. */
  HOST_LIMITS: hostLimits,
  /** Pause of a host after its first failure; doubled for every further consecutive failure. */
  HOST_FAILURE_BACKOFF_MS: durationMs(1_000),
  /** The longest pause a failing host gets (and the cap on a `Retry-After` it asks for). */
  HOST_FAILURE_BACKOFF_MAX_MS: durationMs(300_000),
};

export type HostPolitenessConfig = z.infer<z.ZodObject<typeof hostPolitenessConfigShape>>;

/** The limit table the configuration describes. */
export function hostLimitTableFromConfig(config: HostPolitenessConfig): HostLimitTable {
  const rate = config.HOST_RATE_PER_SECOND;
  return new HostLimitTable(
    { concurrency: config.HOST_CONCURRENCY, ratePerSecond: rate, burst: Math.max(1, Math.ceil(rate)) },
    config.HOST_LIMITS,
  );
}
