import { z } from 'zod';

/** More workers than this is a typo, not a machine. */
export const MAX_WORKERS = 256;

/**
 * WORKERS: a whole number of processes from 1 to {@link MAX_WORKERS}, or `0`/`auto` for one per
 * core; `auto` comes out as 0 and is resolved by `servingProcesses`. @default 1
 */
export const workerCount = () =>
  z.coerce
    .string()
    .default('1')
    .transform((raw, ctx) => {
      const value = raw.trim();
      if (value.toLowerCase() === 'auto') return 0;
      const count = /^\d{1,3}$/.test(value) ? Number(value) : Number.NaN;
      if (Number.isNaN(count) || count > MAX_WORKERS) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a whole number of processes from 1 to ${MAX_WORKERS}, or 0/auto for one per core`,
        });
        return z.NEVER;
      }
      return count;
    });
