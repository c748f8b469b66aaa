import { z } from 'zod';
import { durationMs, positiveInt } from '@modproxy/config';
import { parseGoproxyList } from './parse-goproxy';

/**
 * The configuration variables of an upstream, the same in every app that fetches: the
 * GOPROXY-style list (validated here, so a bad list stops start-up naming `UPSTREAM`), deadlines,
 * credentials for upstream proxies, and the go command for `direct`.
 */
export const upstreamConfigShape = {
  UPSTREAM: z
    .string()
    .default('direct')
    .superRefine((value, ctx) => {
      try {
        parseGoproxyList(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    }),
  UPSTREAM_TIMEOUT_MS: durationMs(30_000),
  UPSTREAM_AUTHORIZATION: z.string().optional(),
  GO_BINARY: z.string().min(1).default('go'),
  GO_CONCURRENCY: positiveInt(4),
};
