#!/usr/bin/env node
// The containers' health check: `node healthcheck.mjs <url>` exits 0 when the URL answers 2xx
// within the deadline, 1 otherwise. The images have no curl or wget (slim base, nothing extra
// installed for this), and Node's fetch needs nothing else. It prints the status or the
// reason, which `docker inspect` shows; no secret is ever in a health URL.
const url = process.argv[2];
if (!url) {
  process.stderr.write('usage: healthcheck.mjs <url>\n');
  process.exit(2);
}
// Below Docker's and compose's 5 s health check timeout, so the reason is still printed.
const deadlineMs = 4000;

try {
  const response = await fetch(url, { signal: AbortSignal.timeout(deadlineMs) });
  const body = (await response.text()).trim().slice(0, 200);
  process.stdout.write(`${response.status} ${body}\n`);
  process.exit(response.ok ? 0 : 1);
} catch (error) {
  process.stdout.write(`unhealthy: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
