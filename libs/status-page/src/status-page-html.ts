import type { HostState } from '@modproxy/queue';
import type { FetchedVersion, FetchFailure, QueueReadState, StatusSnapshot } from './status-snapshot';

export interface StatusPageOptions {
  /** The page's heading. @default 'modproxy status' */
  title?: string;
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2430; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 1.75rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .3rem .6rem; border-bottom: 1px solid #dde2ea; }
th { background: #f3f5f8; font-weight: 600; }
code, .mono { font-family: ui-monospace, monospace; font-size: 13px; }
.meta, .ago, .empty, .note { color: #5b6677; }
.kind { font-weight: 600; color: #a12a2a; }
.cooling { font-weight: 600; color: #a15c00; }
.ok { color: #1f7a3a; }
ul { margin: 0; padding-left: 1.1rem; }
`;

/**
 * The status page as one server-rendered HTML document: no script, one inline style sheet.
 * Everything that comes from data (module paths, messages, host names) is escaped.
 */
export function renderStatusPage(snapshot: StatusSnapshot, options: StatusPageOptions = {}): string {
  const title = options.title ?? 'modproxy status';
  const now = snapshot.generatedAt;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="meta">As of ${when(now, now)}. <a href="">Reload</a></p>
${section('fetched', 'Recently fetched versions', fetchedTable(snapshot.fetched, now), queueNote(snapshot.queue, 'the fetch queue’s completed jobs'))}
${section('hosts', 'Crawl state per host', hostsBody(snapshot.hostsState, snapshot.hosts, now), '')}
${section('failures', 'Recent failures', failuresTable(snapshot.failures, now), queueNote(snapshot.queue, 'the fetch queue’s failed jobs'))}
</body>
</html>
`;
}

/** Text safe in HTML content and in quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char] ?? char);
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

function section(id: string, heading: string, body: string, note: string): string {
  return `<section id="${id}">\n<h2>${escapeHtml(heading)}</h2>\n${note}${body}\n</section>`;
}

function queueNote(state: QueueReadState, what: string): string {
  switch (state.state) {
    case 'ok':
      return '';
    case 'not-configured':
      return '';
    case 'unavailable':
      return `<p class="note">Without ${escapeHtml(what)}: ${escapeHtml(state.reason)}.</p>\n`;
  }
}

function fetchedTable(fetched: FetchedVersion[], now: Date): string {
  if (fetched.length === 0) return '<p class="empty">No version fetched recently.</p>';
  const rows = fetched.map(
    (entry) =>
      `<tr data-module="${escapeHtml(entry.module)}" data-version="${escapeHtml(entry.version)}">` +
      `<td class="mono">${escapeHtml(entry.module)}</td>` +
      `<td class="mono">${escapeHtml(entry.version)}</td>` +
      `<td>${when(entry.at, now)}</td>` +
      `<td>${entry.durationMs === undefined ? '' : escapeHtml(duration(entry.durationMs))}</td>` +
      `<td>${escapeHtml(entry.by)}${entry.result === 'already-stored' ? ' (already stored)' : ''}</td>` +
      '</tr>',
  );
  return table(['module', 'version', 'when', 'took', 'by'], rows);
}

function failuresTable(failures: FetchFailure[], now: Date): string {
  if (failures.length === 0) return '<p class="empty">No fetch failed recently.</p>';
  const rows = failures.map(
    (failure) =>
      `<tr data-module="${escapeHtml(failure.module)}" data-version="${escapeHtml(failure.version)}">` +
      `<td class="mono">${escapeHtml(failure.module)}</td>` +
      `<td class="mono">${escapeHtml(failure.version)}</td>` +
      `<td class="kind">${escapeHtml(failure.kind)}</td>` +
      `<td>${when(failure.at, now)}</td>` +
      `<td>${escapeHtml(failure.message)}` +
      (failure.detail ? `<br><span class="mono">${escapeHtml(failure.detail)}</span>` : '') +
      '</td>' +
      `<td>${escapeHtml(failure.by)}${failure.attempts === undefined ? '' : `, ${failure.attempts} attempt${failure.attempts === 1 ? '' : 's'}`}</td>` +
      '</tr>',
  );
  return table(['module', 'version', 'kind', 'when', 'message and detail', 'by'], rows);
}

function hostsBody(state: QueueReadState, hosts: HostState[], now: Date): string {
  if (state.state === 'not-configured') {
    return '<p class="note">No queue Redis configured (QUEUE_REDIS_URL): this process fetches by itself, and crawl state lives in crathens.</p>';
  }
  if (state.state === 'unavailable') {
    return `<p class="note">Unavailable: ${escapeHtml(state.reason)}.</p>`;
  }
  if (hosts.length === 0) return '<p class="empty">No host asked yet.</p>';
  const rows = hosts.map((host) => {
    const status = host.coolingDownUntil
      ? `<span class="cooling">cooling down</span> until ${when(host.coolingDownUntil, now)}`
      : '<span class="ok">ok</span>';
    const failures = host.recentFailures
      .slice(0, 3)
      .map(
        (record) =>
          `<li><span class="kind">${escapeHtml(record.errorKind)}</span> ${escapeHtml(record.message)} ` +
          `<span class="ago">(${when(record.at, now)}, paused ${escapeHtml(duration(record.pauseMs))})</span></li>`,
      );
    return (
      `<tr data-host="${escapeHtml(host.host)}">` +
      `<td class="mono">${escapeHtml(host.host)}</td>` +
      `<td>${status}</td>` +
      `<td>${host.inFlight}</td>` +
      `<td>${host.consecutiveFailures}</td>` +
      `<td>${optionalWhen(host.lastStartAt, now)}</td>` +
      `<td>${optionalWhen(host.lastSuccessAt, now)}</td>` +
      `<td>${optionalWhen(host.lastFailureAt, now)}</td>` +
      `<td>${failures.length > 0 ? `<ul>${failures.join('')}</ul>` : ''}</td>` +
      '</tr>'
    );
  });
  return table(
    [
      'host',
      'state',
      'in flight',
      'consecutive failures',
      'last start',
      'last success',
      'last failure',
      'recent failures',
    ],
    rows,
  );
}

function table(headings: string[], rows: string[]): string {
  const head = headings.map((heading) => `<th scope="col">${escapeHtml(heading)}</th>`).join('');
  return `<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${rows.join('\n')}\n</tbody>\n</table>`;
}

function optionalWhen(at: Date | undefined, now: Date): string {
  return at ? when(at, now) : '<span class="empty">never</span>';
}

/** An instant as UTC to the second, with how long ago (or how soon) it is. */
function when(at: Date, now: Date): string {
  const iso = at.toISOString();
  const shown = `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
  return `<time datetime="${escapeHtml(iso)}">${escapeHtml(shown)}</time> <span class="ago">(${escapeHtml(relative(at, now))})</span>`;
}

function relative(at: Date, now: Date): string {
  const ms = at.getTime() - now.getTime();
  const span = spanText(Math.abs(ms));
  if (span === undefined) return 'now';
  return ms > 0 ? `in ${span}` : `${span} ago`;
}

function spanText(ms: number): string | undefined {
  const seconds = Math.round(ms / 1000);
  if (seconds < 1) return undefined;
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}

function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}
