import { afterEach, describe, expect, it } from 'vitest';
import { runService } from './run-service';

const BANNER = 'test service listening: 127.0.0.1:1';

describe('runService', () => {
  const added: Array<[NodeJS.Signals, (...args: unknown[]) => void]> = [];
  const realWrite = process.stdout.write.bind(process.stdout);

  afterEach(() => {
    process.stdout.write = realWrite;
    for (const [signal, listener] of added.splice(0)) process.off(signal, listener);
  });

  it('handles SIGTERM and SIGINT before it prints the banner, so a signal sent on the banner is a graceful stop', async () => {
    const before = {
      SIGTERM: new Set(process.listeners('SIGTERM')),
      SIGINT: new Set(process.listeners('SIGINT')),
    };
    // What a supervisor or test reading stdout could do the moment the banner arrives: signal.
    // Without a listener then, the signal's default action kills the process (no exit code).
    const atBanner = new Promise<{ SIGTERM: number; SIGINT: number }>((resolve) => {
      process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        if (String(chunk).includes(BANNER)) {
          const ours = (signal: 'SIGTERM' | 'SIGINT') =>
            process.listeners(signal).filter((listener) => !before[signal].has(listener)).length;
          resolve({ SIGTERM: ours('SIGTERM'), SIGINT: ours('SIGINT') });
          return true;
        }
        return (realWrite as (...args: unknown[]) => boolean)(chunk, ...rest);
      }) as typeof process.stdout.write;
    });

    runService({
      name: 'test',
      loadConfig: () => ({ LOG_LEVEL: 'silent' }),
      start: async () => ({ banner: BANNER, shutdown: async () => undefined }),
    });

    const counted = await atBanner;
    for (const signal of ['SIGTERM', 'SIGINT'] as const)
      for (const listener of process.listeners(signal))
        if (!before[signal].has(listener)) added.push([signal, listener as (...args: unknown[]) => void]);
    expect(counted).toEqual({ SIGTERM: 1, SIGINT: 1 });
  });
});
