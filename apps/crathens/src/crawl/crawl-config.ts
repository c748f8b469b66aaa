import { z } from 'zod';
import { durationMs, positiveInt } from '@modproxy/config';
import { checkPrefixPatterns } from '@modproxy/gomod';
import { hostPolitenessConfigShape } from '@modproxy/queue';
import { versionSourceConfigShape } from '@modproxy/upstream';

/** A duration that may be 0 (no jitter). */
const durationOrZero = (fallback: number) =>
  z.coerce
    .number({ error: 'must be a duration in milliseconds' })
    .int('must be a whole number of milliseconds')
    .min(0, 'must be 0 or more')
    .default(fallback);

/** The crawl's and politeness' variables, spread into crathens' schema. */
export const crawlConfigShape = {
  ...hostPolitenessConfigShape,
  ...versionSourceConfigShape,
  /** CrawlModule jobs this process runs at once. */
  CRAWL_CONCURRENCY: positiveInt(4),
  /** How often the whole catalog is crawled. */
  CRAWL_INTERVAL_MS: durationMs(6 * 3_600_000),
  /** Each module's crawl of a catalog pass is delayed by a random time below this, so a pass is spread out. */
  CRAWL_JITTER_MS: durationOrZero(3_600_000),
  /** How often modules clients asked for recently are crawled. */
  RECENT_CRAWL_INTERVAL_MS: durationMs(300_000),
  /** How far back "recently" reaches. */
  RECENT_CRAWL_WINDOW_MS: durationMs(24 * 3_600_000),
  /** GOPRIVATE-style globs of modules whose new versions are fetched as soon as a crawl finds them. */
  PREFETCH_MODULES: z
    .string()
    .default('')
    .superRefine((value, ctx) => {
      const problem = value === '' ? undefined : checkPrefixPatterns(value);
      if (problem)
        ctx.addIssue({ code: 'custom', message: `${problem} (comma-separated globs, as in GOPRIVATE)` });
    }),
};

export type CrawlConfig = z.infer<z.ZodObject<typeof crawlConfigShape>>;
