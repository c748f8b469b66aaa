import type { WarmEntry, WarmLineError } from './warm-entries';
import type { WarmReport } from './warm-run';

/** Entries listed by name per group; the rest are counted. */
const LISTED = 100;

/**
 * The closing summary: counts, then what was fetched, what was already there (or queued) and
 * every failure with its reason, lines of the file that named no module version included.
 */
export function formatWarmSummary(
  report: WarmReport,
  lineErrors: readonly WarmLineError[],
  source: string,
): string {
  const failures = report.failed.length + lineErrors.length;
  const total =
    report.fetched.length + report.alreadyThere.length + report.queued.length + report.failed.length;
  const out: string[] = [`warm: ${total} module versions from ${source}`];
  const counts: Array<[string, number]> = [
    ['fetched', report.fetched.length],
    ['already there', report.alreadyThere.length],
    ...(report.queued.length > 0 ? ([['queued', report.queued.length]] as Array<[string, number]>) : []),
    ['failed', failures],
  ];
  for (const [label, count] of counts) out.push(`  ${`${label}:`.padEnd(15)}${String(count).padStart(6)}`);
  const group = (title: string, lines: string[]) => {
    if (lines.length === 0) return;
    out.push(`${title} (${lines.length}):`);
    for (const line of lines.slice(0, LISTED)) out.push(`  ${line}`);
    if (lines.length > LISTED) out.push(`  … and ${lines.length - LISTED} more`);
  };
  const name = (entry: WarmEntry) => `${entry.module}@${entry.version}`;
  group('fetched', report.fetched.map(name));
  group('already there', report.alreadyThere.map(name));
  group('queued', report.queued.map(name));
  group('failed', [
    ...report.failed.map((entry) => `${name(entry)}: ${entry.reason}`),
    ...lineErrors.map((error) => `line ${error.line} ${JSON.stringify(error.text)}: ${error.reason}`),
  ]);
  return `${out.join('\n')}\n`;
}
