#!/usr/bin/env node
// Adds up the vitest JSON reports of every project into one closing line, and fails when a
// project ran no test at all or a report is missing.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? 'tmp/test-results';
let passed = 0;
let failed = 0;
let skipped = 0;
let files;
try {
  files = readdirSync(dir).filter((name) => name.endsWith('.json'));
} catch {
  files = [];
}
const empty = [];
for (const file of files) {
  const report = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + (report.numTodoTests ?? 0);
  if (report.numTotalTests === 0) empty.push(file.replace(/\.json$/, ''));
}
for (const project of empty) process.stdout.write(`project ${project} ran no test\n`);
process.stdout.write(`\n${files.length} projects\n`);
process.stdout.write(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exit(failed > 0 || files.length === 0 || empty.length > 0 ? 1 : 0);
