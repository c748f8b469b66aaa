import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { checkPrefixPatterns } from '@modproxy/gomod';
import { DOWNLOAD_MODES, DownloadPolicy, redirects, type DownloadMode } from '@modproxy/module-service';

const modeSchema = z.enum(DOWNLOAD_MODES as [DownloadMode, ...DownloadMode[]], {
  error: `must be one of ${DOWNLOAD_MODES.join(', ')}`,
});

/**
 * Where a redirect sends the go command: an absolute http(s) URL the client may see, so it
 * must carry no credentials (they would reach every client) and no query or fragment (the
 * request path is appended to it).
 */
export const redirectUrlSchema = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be an absolute http(s) URL' });
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    ctx.addIssue({ code: 'custom', message: 'must be an http or https URL' });
  } else if (url.username !== '' || url.password !== '') {
    // Said without the value: it holds a secret.
    ctx.addIssue({ code: 'custom', message: 'must not carry credentials: clients are sent to it' });
  } else if (url.search !== '' || url.hash !== '') {
    ctx.addIssue({ code: 'custom', message: 'must not have a query or fragment' });
  }
});

const patternSchema = z
  .string({ error: 'must be a string of GOPRIVATE-style globs' })
  .min(1, 'must not be empty')
  .superRefine((value, ctx) => {
    const problem = checkPrefixPatterns(value);
    if (problem)
      ctx.addIssue({ code: 'custom', message: `${problem} (comma-separated globs, as in GOPRIVATE)` });
  });

/**
 * The download-mode file (`DOWNLOAD_MODE_FILE`), JSON, after Athens' download file:
 *
 * ```json
 * { "mode": "sync", "upstream": "https://proxy.golang.org",
 *   "modules": [{ "pattern": "github.com/corp/*", "mode": "none" },
 *               { "pattern": "github.com/big", "mode": "redirect", "upstream": "https://mirror.test" }] }
 * ```
 *
 * `mode` is the default, `modules` is tried in order (first match wins), and `upstream` is
 * where `redirect` and `async_redirect` send clients (an entry's own, else the top-level one).
 */
export const downloadModeFileSchema = z
  .object({
    mode: modeSchema.default('sync'),
    upstream: redirectUrlSchema.optional(),
    modules: z
      .array(
        z.strictObject({ pattern: patternSchema, mode: modeSchema, upstream: redirectUrlSchema.optional() }),
        { error: 'must be a list of {pattern, mode, upstream?}' },
      )
      .default([]),
  })
  .strict()
  .superRefine((file, ctx) => {
    if (redirects(file.mode) && file.upstream === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['upstream'],
        message: `is required: the default mode is ${file.mode}`,
      });
    }
    file.modules.forEach((entry, i) => {
      if (redirects(entry.mode) && entry.upstream === undefined && file.upstream === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['modules', i, 'upstream'],
          message: `is required: the mode is ${entry.mode} and the file names no default upstream`,
        });
      }
    });
  });

export type DownloadModeFile = z.infer<typeof downloadModeFileSchema>;

/**
 * The file at `path`, validated; the error's message names the entry that is wrong
 * (`modules[2].mode: must be one of …`), for the configuration error that names the variable.
 */
export function readDownloadModeFile(path: string): DownloadModeFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${path} is not valid JSON`);
  }
  const result = downloadModeFileSchema.safeParse(parsed);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${entryName(issue.path)}: ${issue.message}`);
    throw new Error(`${path}: ${problems.join('; ')}`);
  }
  return result.data;
}

/** The policy a validated file describes. */
export function downloadPolicyOf(file: DownloadModeFile): DownloadPolicy {
  return new DownloadPolicy({
    mode: file.mode,
    ...(file.upstream === undefined ? {} : { redirectUrl: file.upstream }),
    rules: file.modules.map((entry) => ({
      pattern: entry.pattern,
      mode: entry.mode,
      ...(entry.upstream === undefined ? {} : { redirectUrl: entry.upstream }),
    })),
  });
}

/** `modules[2].pattern` for the path `['modules', 2, 'pattern']`. */
function entryName(path: ReadonlyArray<PropertyKey>): string {
  if (path.length === 0) return '(file)';
  return path
    .map((element, i) =>
      typeof element === 'number' ? `[${element}]` : `${i === 0 ? '' : '.'}${String(element)}`,
    )
    .join('');
}
