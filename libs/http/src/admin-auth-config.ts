import { z } from 'zod';
import { booleanFlag, isLoopbackHost } from '@modproxy/config';

/**
 * The variables of an admin port's authentication (crathens' queue dashboard, the proxy's
 * status page), spread into the app's schema so errors name the variable. ADMIN_PASSWORD and
 * ADMIN_TOKEN are secrets by their names (`isSecretVariable` in libs/config): every log line and
 * error of the process has them redacted.
 */
export const adminAuthConfigShape = {
  /** The user name HTTP Basic asks for, with ADMIN_PASSWORD. */
  ADMIN_USER: z
    .string()
    .min(1)
    .regex(/^[^:\s]+$/, 'must not contain ":" or spaces')
    .default('admin'),
  /** HTTP Basic password of the admin pages (what a browser prompts for). */
  ADMIN_PASSWORD: z.string().min(12, 'must be at least 12 characters').optional(),
  /** Bearer token of the admin pages (`Authorization: Bearer <token>`, for scripts and proxies). */
  ADMIN_TOKEN: z
    .string()
    .min(16, 'must be at least 16 characters')
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
    .optional(),
  /**
   * Serves the admin pages without authentication when neither ADMIN_PASSWORD nor ADMIN_TOKEN is
   * set; only on a loopback ADMIN_HOST. Without it and without credentials, the pages are off.
   */
  ADMIN_ALLOW_UNAUTHENTICATED: booleanFlag(false),
};

export type AdminAuthConfig = z.infer<z.ZodObject<typeof adminAuthConfigShape>>;

/** An admin page without credentials may only be reached from this machine. */
export function checkAdminAuthConfig(
  config: AdminAuthConfig & { ADMIN_HOST: string },
  ctx: z.RefinementCtx,
): void {
  const credentials = config.ADMIN_PASSWORD !== undefined || config.ADMIN_TOKEN !== undefined;
  if (config.ADMIN_ALLOW_UNAUTHENTICATED && !credentials && !isLoopbackHost(config.ADMIN_HOST)) {
    ctx.addIssue({
      code: 'custom',
      path: ['ADMIN_ALLOW_UNAUTHENTICATED'],
      message: `may only be true when ADMIN_HOST (${config.ADMIN_HOST}) is a loopback address; set ADMIN_PASSWORD or ADMIN_TOKEN instead`,
    });
  }
}
