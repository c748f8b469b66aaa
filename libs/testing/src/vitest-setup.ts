import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';
import { HERMETIC_REPORT_VARIABLE, takeChildViolations } from './hermetic-children';
import { installHermeticNetwork, takeHermeticViolations } from './hermetic-network';

// Loaded by every project's vitest configuration (vitest.shared.ts) before each test file.
installHermeticNetwork();
// App processes started by the tests (startAppProcess) report what they refused here.
const report = (process.env[HERMETIC_REPORT_VARIABLE] ??= join(
  tmpdir(),
  `modproxy-hermetic-${process.pid}.jsonl`,
));

function failOnViolations(when: string): void {
  const violations = [...takeHermeticViolations(), ...takeChildViolations()];
  if (violations.length === 0) return;
  const list = violations.map((violation) => `- ${violation.what}\n${violation.stack}`).join('\n');
  throw new Error(`a test left loopback ${when}:\n${list}`);
}

afterEach(() => failOnViolations('(refused by libs/testing/src/hermetic-network.ts)'));
afterAll(() => {
  try {
    failOnViolations('outside its tests (in a beforeAll or afterAll hook)');
  } finally {
    rmSync(report, { force: true });
  }
});
