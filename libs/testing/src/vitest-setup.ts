import { afterAll, afterEach } from 'vitest';
import { installHermeticNetwork, takeHermeticViolations } from './hermetic-network';

// Loaded by every project's vitest configuration (vitest.shared.ts) before each test file.
installHermeticNetwork();

function failOnViolations(when: string): void {
  const violations = takeHermeticViolations();
  if (violations.length === 0) return;
  const list = violations.map((violation) => `- ${violation.what}\n${violation.stack}`).join('\n');
  throw new Error(`a test left loopback ${when}:\n${list}`);
}

afterEach(() => failOnViolations('(refused by libs/testing/src/hermetic-network.ts)'));
afterAll(() => failOnViolations('outside its tests (in a beforeAll or afterAll hook)'));
