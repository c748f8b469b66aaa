import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import type { HermeticViolation } from './hermetic-network';

/** Set by the test setup in each test process; app processes append what they refused there. */
export const HERMETIC_REPORT_VARIABLE = 'MODPROXY_HERMETIC_REPORT';

let preload: string | undefined;

/** The preload as one JavaScript file (bundled once per content, kept in the temp directory). */
function preloadFile(): string {
  if (preload) return preload;
  const entry = fileURLToPath(new URL('./hermetic-preload.ts', import.meta.url));
  const { outputFiles } = buildSync({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    write: false,
  });
  const code = outputFiles[0]?.contents ?? new Uint8Array();
  const hash = createHash('sha256').update(code).digest('hex').slice(0, 16);
  const file = join(tmpdir(), `modproxy-hermetic-preload-${hash}.mjs`);
  if (!existsSync(file)) {
    // Written aside and renamed, so that a parallel test process never loads half a file.
    const partial = `${file}.${process.pid}.tmp`;
    writeFileSync(partial, code);
    renameSync(partial, file);
  }
  preload = file;
  return file;
}

/**
 * Node arguments and variables that give an app process the hermetic network of the tests,
 * when it is started by a test (the setup sets {@link HERMETIC_REPORT_VARIABLE}); nothing
 * otherwise, e.g. for the benchmarks.
 */
export function hermeticChildOptions(): { execArgv: string[]; env: Record<string, string> } {
  const report = process.env[HERMETIC_REPORT_VARIABLE];
  if (!report) return { execArgv: [], env: {} };
  return { execArgv: ['--import', preloadFile()], env: { [HERMETIC_REPORT_VARIABLE]: report } };
}

/** What app processes refused since the last call, which are then forgotten. */
export function takeChildViolations(): HermeticViolation[] {
  const report = process.env[HERMETIC_REPORT_VARIABLE];
  if (!report || !existsSync(report)) return [];
  const text = readFileSync(report, 'utf8');
  if (text === '') return [];
  writeFileSync(report, '');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as HermeticViolation);
}
