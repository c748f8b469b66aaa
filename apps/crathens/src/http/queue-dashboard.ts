import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Queue } from 'bullmq';
import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { CRAWL_QUEUE, FETCH_QUEUE, SCHEDULE_QUEUE } from '@modproxy/queue';

export interface QueueDashboardOptions {
  /** The queue Redis; shared, not closed here. */
  connection: Redis;
  /** The BullMQ key prefix (QUEUE_PREFIX). */
  prefix: string;
  /** Where the dashboard is mounted. @default '/admin/queues' */
  basePath?: string;
}

/** Where crathens serves Bull Board on its admin port. */
export const QUEUE_DASHBOARD_PATH = '/admin/queues';

/**
 * The dashboard ships a link to a web font; the page must not make an operator's browser call
 * anyone but us. Its scripts, styles and API calls are all served from here.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'self'",
  "form-action 'self'",
].join('; ');

const DESCRIPTIONS: Record<string, string> = {
  [FETCH_QUEUE]: 'FetchVersion: one module version fetched, verified and stored (job id module@version)',
  [CRAWL_QUEUE]: 'CrawlModule and RefreshList: what upstream lists of a module',
  [SCHEDULE_QUEUE]: 'the crawl-catalog and crawl-recent schedulers’ ticks',
};

/**
 * Bull Board over the queues crathens works on (fetch, crawl, crawl-schedule), read through
 * queues of their own on the shared connection. Mount {@link handler} behind the admin
 * authentication; operators may retry, promote and clean jobs from it.
 */
export class QueueDashboard {
  readonly basePath: string;
  readonly handler: RequestHandler;
  private readonly queues: Queue[];

  constructor(options: QueueDashboardOptions) {
    this.basePath = options.basePath ?? QUEUE_DASHBOARD_PATH;
    this.queues = [FETCH_QUEUE, CRAWL_QUEUE, SCHEDULE_QUEUE].map((name) => {
      const queue = new Queue(name, { connection: options.connection, prefix: options.prefix });
      // Connection errors surface in the dashboard's own answers; readiness reports Redis.
      queue.on('error', () => undefined);
      return queue;
    });
    const serverAdapter = new ExpressAdapter();
    serverAdapter.setBasePath(this.basePath);
    createBullBoard({
      queues: this.queues.map(
        (queue) => new BullMQAdapter(queue, { description: DESCRIPTIONS[queue.name] ?? '' }),
      ),
      serverAdapter,
      options: { uiConfig: { boardTitle: `modproxy queues (${options.prefix})`, hideDocsLink: true } },
    });
    const router = serverAdapter.getRouter() as RequestHandler;
    this.handler = (req, res, next) => {
      res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Referrer-Policy', 'no-referrer');
      router(req, res, next);
    };
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.queues.map((queue) => queue.close()));
  }
}
