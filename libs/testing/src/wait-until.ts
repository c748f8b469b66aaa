import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitUntilOptions {
  /** Named in the error when the deadline passes. */
  what?: string;
  /** A deadline for a slow machine, never a measurement. @default 10000 */
  timeoutMs?: number;
  /** @default 10 */
  intervalMs?: number;
}

/**
 * Waits for a condition instead of sleeping for a guessed time: resolves as soon as `check`
 * returns true, rejects with `what` once the deadline has passed (checking one last time).
 */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  options: WaitUntilOptions = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) {
      if (await check()) return;
      throw new Error(
        `timed out after ${options.timeoutMs ?? 10_000} ms waiting until ${options.what ?? 'the condition held'}`,
      );
    }
    await sleep(options.intervalMs ?? 10);
  }
}
