import type { IncomingMessage, ServerResponse } from 'node:http';
import { type GoproxyRequest, requestSignal } from '@modproxy/http';
import { isRedirectToUpstream, type ModuleService } from '@modproxy/module-service';
import type { ZipDownloads } from './zip-downloads';

/** Immutable content (a canonical version's info, go.mod, zip) never changes: cache it for good. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** What was served before the version was verified and stored. */
const NO_STORE = 'no-store';
/** list and latest move as new versions are tagged. */
const SHORT = 'public, max-age=60';
const JSON_TYPE = 'application/json';
const TEXT_TYPE = 'text/plain; charset=utf-8';

export interface GoproxyAnswersOptions {
  service: ModuleService;
  zips: ZipDownloads;
  /** A canonical version's .info, .mod or .zip was answered: what storage held, or fetched for it. */
  onServed?(endpoint: 'info' | 'mod' | 'zip', source: 'storage' | 'fetched'): void;
}

/**
 * Answers one parsed GOPROXY request on a bare node:http response (the lean path in front of
 * Express, and Express itself for the requests the lean path leaves to it): headers written
 * once, the body in one `end` (or the zip streamed). Throws the service's errors for the one
 * error mapping; a download mode's redirect is answered here.
 */
export async function answerGoproxy(
  options: GoproxyAnswersOptions,
  request: GoproxyRequest,
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  try {
    await answer(options, request, req, res);
  } catch (error) {
    if (!isRedirectToUpstream(error)) throw error;
    redirect(res, `${error.baseUrl}${path}`);
  }
}

async function answer(
  options: GoproxyAnswersOptions,
  request: GoproxyRequest,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const { service } = options;
  const signal = requestSignal(res);
  // Whether this answer is what storage held or what this request had fetched (the warm
  // command tells "already there" from "fetched" by it).
  let fetched = false;
  // An .info or .mod from upstream alone, before its zip was verified: no cache keeps it.
  let unverified = false;
  const read = { signal, onFetched: () => (fetched = true), onUnverified: () => (unverified = true) };
  const source = (endpoint: 'info' | 'mod' | 'zip'): string => {
    options.onServed?.(endpoint, fetched ? 'fetched' : 'storage');
    return fetched ? 'upstream' : 'storage';
  };
  switch (request.kind) {
    case 'list': {
      const answer = await service.list(request.module, { signal });
      let body = '';
      for (const version of answer.versions) body += `${version}\n`;
      return sendBody(res, TEXT_TYPE, SHORT, answer.source, answer.stale, body);
    }
    case 'latest': {
      const answer = await service.latest(request.module, { signal });
      return sendBody(res, JSON_TYPE, SHORT, answer.source, answer.stale, answer.info);
    }
    case 'info': {
      const { info, immutable } = await service.info(request.module, request.version, read);
      if (!immutable) return sendBody(res, JSON_TYPE, SHORT, undefined, false, info);
      return sendBody(res, JSON_TYPE, unverified ? NO_STORE : IMMUTABLE, source('info'), false, info);
    }
    case 'mod': {
      const mod = await service.mod(request.module, request.version, read);
      return sendBody(res, TEXT_TYPE, unverified ? NO_STORE : IMMUTABLE, source('mod'), false, mod);
    }
    case 'zip': {
      const zip = await service.zip(request.module, request.version, read);
      // Set, not written: a zip that fails before its first byte still gets a status.
      res.statusCode = 200;
      res.setHeader('Content-Type', 'application/zip');
      res.setHeader('Content-Length', zip.size);
      res.setHeader('Cache-Control', IMMUTABLE);
      res.setHeader('X-Modproxy-Source', source('zip'));
      if (req.method === 'HEAD') {
        zip.stream.destroy();
        res.end();
        return;
      }
      return options.zips.send(res, zip, request.module, request.version);
    }
  }
}

/** One writeHead and one end; node leaves the body out of a HEAD answer. */
function sendBody(
  res: ServerResponse,
  contentType: string,
  cacheControl: string,
  source: string | undefined,
  stale: boolean,
  body: Buffer | string,
): void {
  const headers: Record<string, string | number> = {
    'Content-Type': contentType,
    'Content-Length': typeof body === 'string' ? Buffer.byteLength(body) : body.length,
    'Cache-Control': cacheControl,
  };
  if (source !== undefined) headers['X-Modproxy-Source'] = source;
  if (stale) headers['X-Modproxy-Stale'] = 'true';
  res.writeHead(200, headers);
  res.end(body);
}

/**
 * A miss the download mode leaves to another proxy: 302, as the decision may change (once the
 * version is stored it is served here), so neither the go command nor a cache keeps it.
 */
function redirect(res: ServerResponse, location: string): void {
  const body = `see ${location}\n`;
  res.writeHead(302, {
    Location: location,
    'Cache-Control': 'no-store',
    'Content-Type': TEXT_TYPE,
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}
