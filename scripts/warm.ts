// The warm command: `npm run warm -- <go.sum|go.mod|list> --proxy URL` or `--queue`.
// Everything but the process lives in libs/warm.
import { runWarmCli } from '@modproxy/warm';

const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => controller.abort());
process.exitCode = await runWarmCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: controller.signal,
});
