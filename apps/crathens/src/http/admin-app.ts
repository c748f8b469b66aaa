import type express from 'express';
import { createServiceApp, finishServiceApp, type ServiceAppOptions } from '@modproxy/http';

export type AdminAppOptions = ServiceAppOptions;

/**
 * crathens' admin port: `/healthz`, `/readyz` (the queue Redis and the storage service
 * reachable, not shutting down) and `/metrics`. Nothing else: crathens serves no clients.
 */
export function createAdminApp(options: AdminAppOptions): express.Express {
  return finishServiceApp(createServiceApp(options), options.logger);
}
