import type express from 'express';
import { type AdminAuth, createServiceApp, finishServiceApp, type ServiceAppOptions } from '@modproxy/http';
import type { QueueDashboard } from './queue-dashboard';

export interface AdminAppOptions extends ServiceAppOptions {
  /** Bull Board, served at its base path behind `auth`. Default: none. */
  dashboard?: { auth: AdminAuth; queues: QueueDashboard };
}

/**
 * crathens' admin port: `/healthz`, `/readyz` (the queue Redis and the storage service
 * reachable, not shutting down) and `/metrics`, unauthenticated for probes and scrapers; and the
 * queue dashboard at `/admin/queues`, behind the admin authentication (404 when it is off).
 * crathens serves no clients.
 */
export function createAdminApp(options: AdminAppOptions): express.Express {
  const app = createServiceApp(options);
  const dashboard = options.dashboard;
  if (dashboard) {
    app.use(dashboard.queues.basePath, (_req, res, next) => {
      res.locals['route'] = 'admin-queues';
      next();
    });
    app.use(dashboard.queues.basePath, dashboard.auth.guard, dashboard.queues.handler);
  }
  return finishServiceApp(app, options.logger);
}
