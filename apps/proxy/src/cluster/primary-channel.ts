import { context, propagation } from '@opentelemetry/api';
import { errors } from '@modproxy/errors';
import {
  deserializeModuleError,
  isPrimaryMessage,
  type MetricsJson,
  type PrimaryMessage,
  type SerializedVersionsAnswer,
  type TraceCarrier,
  type WorkerMessage,
} from './cluster-messages';

export interface PrimaryChannelHandlers {
  /** The primary stored a version: show it in this worker's list/latest answers. */
  observe(module: string, version: string): void;
  /** This worker's own metrics, for the primary's aggregate. */
  metrics(): Promise<MetricsJson>;
}

interface Pending<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

/** How long a worker's `/metrics` waits for the primary's aggregate. */
const SCRAPE_TIMEOUT_MS = 10_000;

/**
 * A worker's side of the IPC channel to the primary (`process.send` under node:cluster): asks it
 * to fetch versions and to gather `/metrics`, and hears of stored versions. Requests that are
 * under way when the channel closes (the primary died) fail as `unavailable`.
 */
export class PrimaryChannel {
  private nextId = 1;
  private readonly fetches = new Map<number, Pending<void>>();
  private readonly scrapes = new Map<number, Pending<string>>();
  private readonly answers = new Map<number, Pending<SerializedVersionsAnswer>>();

  constructor(
    private readonly handlers: PrimaryChannelHandlers,
    private readonly channel: NodeJS.Process = process,
  ) {
    channel.on('message', (message: unknown) => {
      if (isPrimaryMessage(message)) this.receive(message);
    });
    channel.once('disconnect', () => this.failAll());
  }

  /** Resolves once the primary has module@version stored (its one fetch for every worker). */
  fetch(module: string, version: string, goModSha256?: string): Promise<void> {
    const id = this.nextId++;
    const expected = goModSha256 === undefined ? {} : { goModSha256 };
    return new Promise<void>((resolve, reject) => {
      this.fetches.set(id, { resolve, reject });
      this.send({ type: 'modproxy:fetch', id, module, version, trace: currentTrace(), ...expected }, () => {
        this.fetches.delete(id);
        reject(lostPrimary('module.fetch', module, version));
      });
    });
  }

  /** `/@v/list` or `/@latest` of module from the primary's embedded cache. */
  versions(kind: 'list' | 'latest', module: string): Promise<SerializedVersionsAnswer> {
    const id = this.nextId++;
    return new Promise<SerializedVersionsAnswer>((resolve, reject) => {
      this.answers.set(id, { resolve, reject });
      this.send({ type: 'modproxy:versions', id, kind, module, trace: currentTrace() }, () => {
        this.answers.delete(id);
        reject(lostPrimary(`versions.${kind}`, module));
      });
    });
  }

  /** Asks the primary to start fetching module@version; nobody waits for it. */
  enqueue(module: string, version: string): void {
    this.send({ type: 'modproxy:enqueue', module, version, trace: currentTrace() }, () => undefined);
  }

  /** Every process's metrics, aggregated by the primary, in the Prometheus text format. */
  scrape(): Promise<string> {
    const id = this.nextId++;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.scrapes.delete(id);
        reject(errors.unavailable('proxy.metrics', 'the primary did not answer the metrics scrape in time'));
      }, SCRAPE_TIMEOUT_MS);
      const done =
        <T>(settle: (value: T) => void) =>
        (value: T) => {
          clearTimeout(timer);
          this.scrapes.delete(id);
          settle(value);
        };
      this.scrapes.set(id, { resolve: done(resolve), reject: done(reject) });
      this.send({ type: 'modproxy:scrape', id }, () =>
        this.scrapes.get(id)?.reject(lostPrimary('proxy.metrics')),
      );
    });
  }

  private receive(message: PrimaryMessage): void {
    switch (message.type) {
      case 'modproxy:fetched': {
        const pending = this.fetches.get(message.id);
        this.fetches.delete(message.id);
        if (message.failure) pending?.reject(deserializeModuleError(message.failure));
        else pending?.resolve();
        return;
      }
      case 'modproxy:versions-answer': {
        const pending = this.answers.get(message.id);
        this.answers.delete(message.id);
        if (message.failure) pending?.reject(deserializeModuleError(message.failure));
        else if (message.answer) pending?.resolve(message.answer);
        return;
      }
      case 'modproxy:observe':
        this.handlers.observe(message.module, message.version);
        return;
      case 'modproxy:scraped':
        this.scrapes.get(message.id)?.resolve(message.text);
        return;
      case 'modproxy:collect':
        void this.handlers.metrics().then(
          (metrics) => this.send({ type: 'modproxy:metrics', id: message.id, metrics }, () => undefined),
          () => this.send({ type: 'modproxy:metrics', id: message.id, metrics: [] }, () => undefined),
        );
        return;
      case 'modproxy:shutdown':
        // The primary stops workers with SIGTERM (runService's graceful path); nothing to do here.
        return;
    }
  }

  private send(message: WorkerMessage, onLost: () => void): void {
    if (!this.channel.connected || !this.channel.send) return onLost();
    this.channel.send(message, undefined, {}, (error: Error | null) => {
      if (error) onLost();
    });
  }

  private failAll(): void {
    for (const pending of this.fetches.values()) pending.reject(lostPrimary('module.fetch'));
    this.fetches.clear();
    for (const pending of this.answers.values()) pending.reject(lostPrimary('versions'));
    this.answers.clear();
    for (const pending of this.scrapes.values()) pending.reject(lostPrimary('proxy.metrics'));
  }
}

/** The active trace context, so the primary's fetch is part of the request's trace. */
function currentTrace(): TraceCarrier {
  const carrier: TraceCarrier = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

function lostPrimary(op: string, module?: string, version?: string) {
  return errors.unavailable(op, 'the proxy is restarting; try again shortly', {
    ...(module !== undefined ? { module } : {}),
    ...(version !== undefined ? { version } : {}),
    retryAfterSeconds: 1,
    detail: 'the IPC channel to the primary process is closed',
  });
}
