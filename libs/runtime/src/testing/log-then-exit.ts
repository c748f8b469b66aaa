/**
 * A service for the exit-logs test: it logs `LINES` lines of about `LINE_BYTES` bytes (yielding
 * now and then, so some are being written when the process exits) on the way out through one
 * of runService's exits, chosen by `EXIT_PATH`:
 * - `start-failure`: the lines, then start fails (exit 1);
 * - `shutdown`: `ready` is printed; on SIGTERM the lines are logged by shutdown (exit 0);
 * - `shutdown-failure`: as `shutdown`, then shutdown fails and says so (exit 1).
 */
import { runService } from '../run-service';

const lines = Number(process.env['LINES'] ?? '100');
const pad = 'x'.repeat(Number(process.env['LINE_BYTES'] ?? '10000'));
const exitPath = process.env['EXIT_PATH'] ?? 'shutdown';

runService({
  name: 'exit-logs',
  loadConfig: () => ({ LOG_LEVEL: 'info' }),
  start: async (_config, logger) => {
    const burst = async (during: string) => {
      for (let i = 0; i < lines; i++) {
        logger.info({ during, i, pad }, 'line');
        if (i % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
      }
    };
    if (exitPath === 'start-failure') {
      await burst('start');
      throw new Error('start failed on purpose');
    }
    // What a server's listener would do: keep the process up until shutdown.
    const serving = setInterval(() => undefined, 60_000);
    return {
      banner: 'ready',
      shutdown: async () => {
        clearInterval(serving);
        await burst('shutdown');
        if (exitPath === 'shutdown-failure') throw new Error('shutdown failed on purpose');
      },
    };
  },
});
