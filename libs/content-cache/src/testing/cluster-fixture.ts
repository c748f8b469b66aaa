/**
 * A node:cluster program for the cluster bus test: the primary relays with
 * ClusterInvalidationRelay and forks three workers, each subscribed with a
 * ClusterWorkerInvalidationBus. Commands on stdin (`primary <module> <version>`, `worker <i>
 * <module> <version>`, `exit`); every worker's invalidation is printed as `heard <i> <module>@<version>`.
 */
import cluster from 'node:cluster';
import { createInterface } from 'node:readline';
import { ClusterInvalidationRelay, ClusterWorkerInvalidationBus } from '../cluster-invalidation-bus';

const WORKERS = 3;

if (cluster.isPrimary) {
  const relay = new ClusterInvalidationRelay(cluster);
  const workers = Array.from({ length: WORKERS }, (_, i) => cluster.fork({ FIXTURE_WORKER: String(i) }));
  let ready = 0;
  cluster.on('message', (_worker, message: { type?: string; index?: string; ref?: string }) => {
    if (message.type === 'fixture:ready' && ++ready === WORKERS) process.stdout.write('ready\n');
    if (message.type === 'fixture:heard') process.stdout.write(`heard ${message.index} ${message.ref}\n`);
  });
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [command, ...args] = line.trim().split(' ');
    if (command === 'primary') void relay.publish({ module: args[0] ?? '', version: args[1] ?? '' });
    if (command === 'worker') {
      workers[Number(args[0])]?.send({ type: 'fixture:publish', module: args[1], version: args[2] });
    }
    if (command === 'exit') {
      void relay.close();
      for (const worker of workers) worker.kill();
      process.exit(0);
    }
  });
} else {
  const index = process.env['FIXTURE_WORKER'] ?? '?';
  const bus = new ClusterWorkerInvalidationBus();
  const send = (message: object) => process.send?.(message);
  await bus.subscribe({
    invalidate: (ref) => send({ type: 'fixture:heard', index, ref: `${ref.module}@${ref.version}` }),
    invalidateAll: () => undefined,
  });
  process.on('message', (message: { type?: string; module?: string; version?: string }) => {
    if (message.type === 'fixture:publish') {
      void bus.publish({ module: message.module ?? '', version: message.version ?? '' });
    }
  });
  send({ type: 'fixture:ready' });
}
