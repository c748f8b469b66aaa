import type { Cluster, Worker } from 'node:cluster';
import { errors } from '@modproxy/errors';
import type { ModuleVersionRef } from '@modproxy/storage';
import type { InvalidationBus, InvalidationListener } from './invalidation-bus';

/** The IPC message of an invalidation, both ways; prefixed like every message of the proxy's processes. */
export const INVALIDATE_MESSAGE = 'modproxy:content-cache:invalidate';

interface InvalidateMessage {
  type: typeof INVALIDATE_MESSAGE;
  module: string;
  version: string;
}

function isInvalidateMessage(message: unknown): message is InvalidateMessage {
  if (typeof message !== 'object' || message === null) return false;
  const { type, module, version } = message as Partial<InvalidateMessage>;
  return type === INVALIDATE_MESSAGE && typeof module === 'string' && typeof version === 'string';
}

/** What a worker's bus needs of its process: node:cluster's IPC channel to the primary. */
export type ClusterChannel = Pick<NodeJS.Process, 'on' | 'off' | 'send' | 'connected'>;

/**
 * A node:cluster worker's bus: invalidations come from the primary (its own purges, and other
 * workers' it relays to everyone); publishing asks the primary to relay. Used without a queue
 * Redis, where the Redis bus reaches every worker by itself.
 */
export class ClusterWorkerInvalidationBus implements InvalidationBus {
  private handler: ((message: unknown) => void) | undefined;

  constructor(private readonly channel: ClusterChannel = process) {}

  publish(ref: ModuleVersionRef): Promise<void> {
    const message: InvalidateMessage = { type: INVALIDATE_MESSAGE, module: ref.module, version: ref.version };
    return new Promise((resolve, reject) => {
      const lost = () =>
        reject(
          errors.unavailable('content-cache.publish', 'the primary process could not be told of the purge', {
            ...ref,
            detail: 'the IPC channel to the primary process is closed',
          }),
        );
      if (!this.channel.connected || !this.channel.send) return lost();
      this.channel.send(message, undefined, {}, (error: Error | null) => (error ? lost() : resolve()));
    });
  }

  async subscribe(listener: InvalidationListener): Promise<void> {
    this.handler = (message: unknown) => {
      if (isInvalidateMessage(message))
        listener.invalidate({ module: message.module, version: message.version });
    };
    this.channel.on('message', this.handler);
  }

  async close(): Promise<void> {
    if (this.handler) this.channel.off('message', this.handler);
    this.handler = undefined;
  }
}

/**
 * The primary's side: relays every worker's invalidation to every worker (the sender included),
 * and publishes the primary's own purges (its admin port) to every worker. A worker that is not
 * alive when a purge is sent starts with an empty memory tier anyway.
 */
export class ClusterInvalidationRelay implements InvalidationBus {
  private readonly relay = (_worker: Worker, message: unknown) => {
    if (isInvalidateMessage(message)) this.broadcast(message);
  };

  constructor(private readonly cluster: Cluster) {
    cluster.on('message', this.relay);
  }

  async publish(ref: ModuleVersionRef): Promise<void> {
    this.broadcast({ type: INVALIDATE_MESSAGE, module: ref.module, version: ref.version });
  }

  /** The primary keeps no cache of its own. */
  async subscribe(): Promise<void> {}

  async close(): Promise<void> {
    this.cluster.off('message', this.relay);
  }

  private broadcast(message: InvalidateMessage): void {
    for (const worker of Object.values(this.cluster.workers ?? {})) {
      if (worker?.isConnected()) worker.send(message);
    }
  }
}
