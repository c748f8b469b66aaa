import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';

/** Metric name → type, as the `# TYPE` lines of a Prometheus text exposition declare them. */
export type MetricTypes = Map<string, string>;

/** One sample of an exposition: its metric name and labels. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
}

/** The metrics an exposition declares, with their types (also those with no sample yet). */
export function metricTypes(exposition: string): MetricTypes {
  const types: MetricTypes = new Map();
  for (const line of exposition.split('\n')) {
    const match = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (match?.[1] && match[2]) types.set(match[1], match[2]);
  }
  return types;
}

/** Every sample line of an exposition, labels unescaped. */
export function samples(exposition: string): Sample[] {
  const found: Sample[] = [];
  for (const line of exposition.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+/.exec(line);
    if (!match?.[1]) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] ?? ''] = (pair[2] ?? '').replace(/\\(.)/g, (_all, c: string) => (c === 'n' ? '\n' : c));
    }
    found.push({ name: match[1], labels });
  }
  return found;
}

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'inf',
  'nan',
  'atan2',
]);

/**
 * The metric names a PromQL expression reads. Not a full parser: strings, label matchers,
 * ranges, grouping clauses and Grafana variables are removed, then every identifier that is
 * not a function call, an aggregation or a keyword is a metric name. Enough for the
 * expressions of our dashboard and rules, which promtool checks for syntax.
 */
export function metricNamesIn(expression: string): string[] {
  const stripped = expression
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{[^}]*\}|\$[a-zA-Z_]\w*/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const name = match[0];
    const at = match.index ?? 0;
    // Part of a number (1e3) or a duration (5m after offset).
    if (at > 0 && /[0-9.]/.test(stripped[at - 1] ?? '')) continue;
    if (KEYWORDS.has(name.toLowerCase())) continue;
    if (/^\s*\(/.test(stripped.slice(at + name.length))) continue;
    names.add(name);
  }
  return [...names];
}

/** Where a name was found, for messages. */
export interface NamedMetric {
  name: string;
  where: string;
}

/** Every expression of a Grafana dashboard: panel (and nested row panel) targets and annotations. */
export async function dashboardMetrics(path: string): Promise<NamedMetric[]> {
  interface Panel {
    title?: string;
    targets?: Array<{ expr?: string }>;
    panels?: Panel[];
  }
  const dashboard = JSON.parse(await readFile(path, 'utf8')) as {
    panels?: Panel[];
    annotations?: { list?: Array<{ name?: string; expr?: string }> };
    templating?: { list?: Array<{ name?: string; query?: string | { query?: string } }> };
  };
  const found: NamedMetric[] = [];
  const visit = (panels: Panel[] = []) => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        for (const name of metricNamesIn(target.expr ?? ''))
          found.push({ name, where: `panel "${panel.title}"` });
      }
      visit(panel.panels);
    }
  };
  visit(dashboard.panels);
  for (const annotation of dashboard.annotations?.list ?? []) {
    for (const name of metricNamesIn(annotation.expr ?? ''))
      found.push({ name, where: `annotation "${annotation.name}"` });
  }
  for (const variable of dashboard.templating?.list ?? []) {
    const query = typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? '');
    // label_values(metric, label): only the first argument is a metric.
    const metric = /label_values\(\s*([^,)]+)/.exec(query)?.[1] ?? query;
    for (const name of metricNamesIn(metric)) found.push({ name, where: `variable "${variable.name}"` });
  }
  return found;
}

interface RuleFile {
  groups?: Array<{ rules?: Array<{ alert?: string; record?: string; expr?: string }> }>;
}

/** The metrics a Prometheus rules file reads, and the names its recording rules define. */
export async function ruleMetrics(path: string): Promise<{ read: NamedMetric[]; recorded: string[] }> {
  const file = parseYaml(await readFile(path, 'utf8')) as RuleFile;
  const read: NamedMetric[] = [];
  const recorded: string[] = [];
  for (const group of file.groups ?? []) {
    for (const rule of group.rules ?? []) {
      if (rule.record) recorded.push(rule.record);
      for (const name of metricNamesIn(rule.expr ?? ''))
        read.push({ name, where: `rule ${rule.alert ?? rule.record ?? '?'}` });
    }
  }
  return { read, recorded };
}

/** Series Prometheus makes itself: scrape health and alert state. */
const PROMETHEUS_OWN = new Set([
  'up',
  'ALERTS',
  'ALERTS_FOR_STATE',
  'scrape_duration_seconds',
  'scrape_samples_scraped',
]);

/**
 * Whether `name` is a series some app exports (a histogram's `_bucket`, `_sum` and `_count`
 * and a summary's `_sum` and `_count` count as its own), one a recording rule defines, or one
 * Prometheus makes itself.
 */
export function isKnownMetric(name: string, exported: MetricTypes, recorded: ReadonlySet<string>): boolean {
  if (exported.has(name) || recorded.has(name) || PROMETHEUS_OWN.has(name)) return true;
  const suffix = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (!suffix?.[1]) return false;
  const type = exported.get(suffix[1]);
  return type === 'histogram' || (type === 'summary' && suffix[2] !== 'bucket');
}
