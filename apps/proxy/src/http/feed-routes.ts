import type express from 'express';
import type { Request, Response } from 'express';
import { errors } from '@modproxy/errors';
import { requestSignal } from '@modproxy/http';
import type { ModuleFeeds } from '@modproxy/module-service';
import { MAX_CATALOG_PAGE_SIZE } from '@modproxy/storage';

/** Athens' default catalog page. */
const CATALOG_PAGE_SIZE = 1_000;
/** index.golang.org's default and largest `limit`. */
const INDEX_LIMIT = 2_000;
/** RFC 3339 date-time, as `since` is given to the public module index. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/i;
/** Feeds move with every save; caches may keep them briefly. */
const FEED_CACHE = 'public, max-age=10';

/**
 * The feeds other mirrors and crawlers read: `/catalog`, Athens' paged JSON of every stored
 * version (`token`, `pagesize`), and `/index`, the public module index's newline-delimited JSON
 * of versions in the order they were stored (`since`, `limit`). Bad parameters are a 400 with a
 * text body (through the error handler).
 */
export function addFeedRoutes(app: express.Express, feeds: ModuleFeeds): void {
  app.get('/catalog', async (req: Request, res: Response) => {
    res.locals['route'] = 'catalog';
    const token = singleParam(req, 'token');
    const pageSize = Math.min(
      positiveIntParam(req, 'pagesize', 'feed.catalog') ?? CATALOG_PAGE_SIZE,
      MAX_CATALOG_PAGE_SIZE,
    );
    const page = await feeds.catalog({
      pageSize,
      ...(token ? { pageToken: token } : {}),
      signal: requestSignal(res),
    });
    res.status(200);
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Cache-Control', FEED_CACHE);
    // Athens leaves `next` out on the last page.
    res.send(
      `${JSON.stringify({
        modules: page.entries.map(({ module, version }) => ({ module, version })),
        ...(page.nextPageToken ? { next: page.nextPageToken } : {}),
      })}\n`,
    );
  });

  app.get('/index', async (req: Request, res: Response) => {
    res.locals['route'] = 'index';
    const since = sinceParam(req);
    const limit = Math.min(positiveIntParam(req, 'limit', 'feed.index') ?? INDEX_LIMIT, INDEX_LIMIT);
    const entries = await feeds.index({ limit, ...(since ? { since } : {}), signal: requestSignal(res) });
    res.status(200);
    res.setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
    res.setHeader('Cache-Control', FEED_CACHE);
    res.send(
      entries
        .map(
          (e) =>
            `${JSON.stringify({ Path: e.module, Version: e.version, Timestamp: e.storedAt.toISOString() })}\n`,
        )
        .join(''),
    );
  });
}

function singleParam(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw errors.invalidArgument(`feed.${name}`, `${name} must be given once`);
  return value;
}

function positiveIntParam(req: Request, name: string, op: string): number | undefined {
  const value = singleParam(req, name);
  if (value === undefined || value === '') return undefined;
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) {
    throw errors.invalidArgument(op, `${name} must be a whole number greater than 0`);
  }
  return Number(value);
}

function sinceParam(req: Request): Date | undefined {
  const value = singleParam(req, 'since');
  if (value === undefined || value === '') return undefined;
  const time = RFC3339.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(time)) {
    throw errors.invalidArgument(
      'feed.index',
      'since must be an RFC 3339 time, e.g. 2019-04-10T19:08:52.997264Z',
    );
  }
  // Stored times are whole milliseconds: a since between two of them starts at the next one.
  const beyondMs = /\.\d{3}(\d+)/.exec(value)?.[1] ?? '';
  return new Date(/[1-9]/.test(beyondMs) ? time + 1 : time);
}
