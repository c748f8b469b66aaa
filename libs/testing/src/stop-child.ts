import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/**
 * Stops a server the tests started: `signal` (its orderly shutdown), then SIGKILL once
 * `graceMs` have passed; resolves when it has exited. Signalled by its pid only.
 */
export async function stopChild(
  child: ChildProcess,
  options: { signal?: NodeJS.Signals; graceMs: number },
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(options.signal ?? 'SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}
