import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errors, isModuleError, ModuleError, toModuleError } from '@modproxy/errors';
import { escapePath, escapeVersion, isCanonicalVersion, isPseudoVersion } from '@modproxy/gomod';
import { bothOrNeither } from './both-or-neither';
import { CallDeadline } from './call-deadline';
import { type GoproxyCall, GoproxyFailures } from './goproxy-failures';
import { HttpFailure } from './http-failure';
import { readAtMost } from './read-at-most';
import { redactedBase, redactText } from './redact-url';
import { fetchedVersion } from './temp-fetched-version';
import type { FetchedVersion, Upstream, UpstreamCallOptions, VersionFile } from './upstream';
import { asHttpFailure, UpstreamHttpClient, type UpstreamResponse } from './upstream-http-client';

export interface GoproxyUpstreamOptions {
  /**
   * Base URL of the upstream GOPROXY, `http://` or `https://`, e.g. `https://proxy.golang.org`
   * or `https://athens.example/go/` (a path prefix is kept, a trailing `/` ignored).
   * `user:password@` in it becomes Basic authentication unless `headers` has an authorization.
   */
  url: string;
  /**
   * Total deadline of one metadata request (`list`, `latest`, `info`, and `.info`/`.mod` while
   * fetching), from sending the request to the last byte of the body. Also the longest silence
   * (no headers yet, or no body bytes) tolerated while a zip is downloading.
   * @default 30000
   */
  timeoutMs?: number;
  /** Total deadline of one `.zip` download, request to last byte. @default 300000 */
  zipTimeoutMs?: number;
  /**
   * Sent with every request, e.g. `{ authorization: 'Bearer …' }`. Authorization, cookie and
   * proxy-authorization are dropped when a redirect leaves the upstream's origin.
   */
  headers?: Record<string, string>;
  /** @default 'modproxy' */
  userAgent?: string;
  /** Directory for fetched zips (each fetch gets its own subdirectory). @default os.tmpdir() */
  tempDir?: string;
  /** A zip larger than this (decoded) is refused (`bad-gateway`) and its download aborted. @default 500 MiB, the go command's limit */
  maxZipBytes?: number;
  /** A list, info or go.mod body larger than this (decoded) is refused (`bad-gateway`). @default 16 MiB, the go command's go.mod limit */
  maxMetadataBytes?: number;
  /** Redirects followed per request; one more answers `bad-gateway`. @default 10 */
  maxRedirects?: number;
  /** Connections open at once to one upstream host; more requests wait. @default 32 */
  maxConnectionsPerHost?: number;
}

const MiB = 1024 * 1024;
/** Error bodies are read only this far (enough for a proxy's one-line explanation), then dropped. */
const ERROR_BODY_READ_BYTES = 4096;

/**
 * An upstream GOPROXY spoken to over HTTP (the GOPROXY protocol of the go command).
 *
 * Answers are translated at this edge: 404 → `not-found` and 410 → `gone`, any other status
 * and any transport failure (refused, reset, DNS, TLS, a cut or undecodable body, an answer
 * that is not what was asked) → `bad-gateway` (with `retryAfterSeconds` from a 429's or 5xx's
 * Retry-After), our own deadline or an upstream that falls silent → `timeout`, and only the
 * caller's abort → `cancelled` (a caller's signal that fired with a `TimeoutError`, a deadline
 * of the caller's, is a `timeout` too). Messages never carry the upstream's URL or body; the
 * errors' `detail` does, for the logs (see {@link GoproxyFailures}).
 */
export class GoproxyUpstream implements Upstream {
  readonly name: string;
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly zipTimeoutMs: number;
  private readonly tempDir: string;
  private readonly maxZipBytes: number;
  private readonly maxMetadataBytes: number;
  private readonly client: UpstreamHttpClient;
  private readonly failures: GoproxyFailures;

  constructor(options: GoproxyUpstreamOptions) {
    const url = parseBaseUrl(options.url);
    this.base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
    this.name = redactedBase(url);
    const headers: Record<string, string> = {
      'user-agent': options.userAgent ?? 'modproxy',
      ...lowerCaseKeys(options.headers ?? {}),
    };
    const secrets: string[] = [];
    if (url.username !== '') {
      const user = decodeURIComponent(url.username);
      const password = decodeURIComponent(url.password);
      secrets.push(user, password, url.username, url.password);
      if (headers['authorization'] === undefined) {
        headers['authorization'] = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      }
    }
    const authorization = headers['authorization'];
    if (authorization !== undefined) secrets.push(authorization, authorization.replace(/^\S+\s+/, ''));
    this.failures = new GoproxyFailures(secrets);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.zipTimeoutMs = options.zipTimeoutMs ?? 300_000;
    this.tempDir = options.tempDir ?? tmpdir();
    this.maxZipBytes = options.maxZipBytes ?? 500 * MiB;
    this.maxMetadataBytes = options.maxMetadataBytes ?? 16 * MiB;
    this.client = new UpstreamHttpClient({
      headers,
      maxRedirects: options.maxRedirects ?? 10,
      maxSocketsPerHost: options.maxConnectionsPerHost ?? 32,
    });
  }

  async list(module: string, options: UpstreamCallOptions = {}): Promise<string[]> {
    const call: GoproxyCall = { op: 'upstream.goproxy.list', module, file: 'list' };
    const body = await this.getBytes(call, `${this.modulePath(call)}/@v/list`, options.signal);
    // Like the go command: the first field of each line, tagged versions only; anything a
    // proxy adds after it (timestamps) or that is not a canonical version is skipped.
    const versions = new Set<string>();
    for (const line of body.toString('utf8').split('\n')) {
      const first = line.trim().split(/\s+/, 1)[0] ?? '';
      if (isCanonicalVersion(first) && !isPseudoVersion(first)) versions.add(first);
    }
    return [...versions];
  }

  async latest(module: string, options: UpstreamCallOptions = {}): Promise<Buffer> {
    const call: GoproxyCall = { op: 'upstream.goproxy.latest', module, file: 'latest' };
    const path = `${this.modulePath(call)}/@latest`;
    const body = await this.getBytes(call, path, options.signal);
    this.checkInfo(call, path, body);
    return body;
  }

  async info(module: string, query: string, options: UpstreamCallOptions = {}): Promise<Buffer> {
    const call: GoproxyCall = { op: 'upstream.goproxy.info', module, version: query, file: '.info' };
    const path = `${this.modulePath(call)}/@v/${this.versionSegment(call, query)}.info`;
    const body = await this.getBytes(call, path, options.signal);
    this.checkInfo(call, path, body, isCanonicalVersion(query) ? query : undefined);
    return body;
  }

  async fetch(module: string, version: string, options: UpstreamCallOptions = {}): Promise<FetchedVersion> {
    const op = 'upstream.goproxy.fetch';
    const call = (file: string): GoproxyCall => ({ op, module, version, file });
    if (!isCanonicalVersion(version)) {
      throw errors.invalidArgument(op, `version "${version}" is not canonical; resolve it with info first`, {
        module,
        version,
      });
    }
    const prefix = `${this.modulePath(call('.info'))}/@v/${this.versionSegment(call('.info'), version)}`;
    const info = await this.getBytes(call('.info'), `${prefix}.info`, options.signal);
    this.checkInfo(call('.info'), `${prefix}.info`, info, version, true);

    const dir = await this.makeFetchDir(call('.zip'));
    const zipFile = join(dir, 'module.zip');
    try {
      const [mod, zipSize] = await bothOrNeither(
        options.signal,
        (signal) => this.getBytes(call('.mod'), `${prefix}.mod`, signal),
        (signal) => this.downloadZip(call('.zip'), `${prefix}.zip`, zipFile, signal),
      );
      return fetchedVersion({ module, version, info, mod, zipSize }, dir, zipFile, op);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** `.info` (with its Time, as a fetch wants it) or `.mod` of a canonical version: one GET. */
  async versionFile(
    module: string,
    version: string,
    file: VersionFile,
    options: UpstreamCallOptions = {},
  ): Promise<Buffer> {
    const call: GoproxyCall = { op: `upstream.goproxy.${file}`, module, version, file: `.${file}` };
    if (!isCanonicalVersion(version)) {
      throw errors.invalidArgument(call.op, `version "${version}" is not canonical`, { module, version });
    }
    const path = `${this.modulePath(call)}/@v/${this.versionSegment(call, version)}.${file}`;
    const body = await this.getBytes(call, path, options.signal);
    if (file === 'info') this.checkInfo(call, path, body, version, true);
    return body;
  }

  /** Closes every connection (calls in flight fail); calls after this fail. */
  async close(): Promise<void> {
    this.client.close();
  }

  private async makeFetchDir(call: GoproxyCall): Promise<string> {
    try {
      await mkdir(this.tempDir, { recursive: true });
      return await mkdtemp(join(this.tempDir, 'goproxy-fetch-'));
    } catch (error) {
      throw toModuleError(error, call.op, { module: call.module, version: call.version });
    }
  }

  private async downloadZip(
    call: GoproxyCall,
    path: string,
    file: string,
    signal: AbortSignal,
  ): Promise<number> {
    return this.get(call, path, this.zipTimeoutMs, signal, async (response) => {
      if (response.declaredLength !== undefined && response.declaredLength > this.maxZipBytes) {
        throw this.tooLarge(call, response.url, `zip of ${response.declaredLength} bytes`, this.maxZipBytes);
      }
      let size = 0;
      const limit = new Transform({
        transform: (chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) => {
          size += chunk.length;
          if (size > this.maxZipBytes) done(this.tooLarge(call, response.url, 'zip', this.maxZipBytes));
          else done(null, chunk);
        },
      });
      await pipeline(response.body, limit, createWriteStream(file, { flags: 'wx' }));
      return size;
    });
  }

  private async getBytes(call: GoproxyCall, path: string, signal: AbortSignal | undefined): Promise<Buffer> {
    return this.get(call, path, this.timeoutMs, signal, async (response) => {
      const { bytes, truncated } = await readAtMost(response.body, this.maxMetadataBytes);
      if (truncated) throw this.tooLarge(call, response.url, 'body', this.maxMetadataBytes);
      return bytes;
    });
  }

  /**
   * One GET under one deadline; `read` consumes a 2xx body, anything else becomes an error
   * here. However it ends, the body has been read to its end or destroyed.
   */
  private async get<T>(
    call: GoproxyCall,
    path: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    read: (response: UpstreamResponse) => Promise<T>,
  ): Promise<T> {
    const deadline = new CallDeadline(timeoutMs, signal);
    let url = new URL(`${this.base}${path}`);
    let response: UpstreamResponse | undefined;
    try {
      response = await this.client.get(url, { signal: deadline.signal, silenceMs: this.timeoutMs });
      url = response.url;
      if (response.status < 200 || response.status > 299) throw await this.statusError(call, response);
      return await read(response);
    } catch (error) {
      throw this.translate(error, call, url, deadline);
    } finally {
      if (response !== undefined && !response.body.destroyed) response.body.destroy();
      deadline.dispose();
    }
  }

  private async statusError(call: GoproxyCall, response: UpstreamResponse): Promise<ModuleError> {
    let body = '';
    let truncated = false;
    try {
      const read = await readAtMost(response.body, ERROR_BODY_READ_BYTES);
      body = read.bytes.toString('utf8');
      truncated = read.truncated;
    } catch {
      // The status alone says enough; a body that cannot be read adds nothing.
    }
    const retryAfter = response.headers['retry-after'];
    return this.failures.status(
      call,
      { status: response.status, statusText: response.statusText, url: response.url, retryAfter },
      body,
      truncated,
    );
  }

  private translate(error: unknown, call: GoproxyCall, url: URL, deadline: CallDeadline): ModuleError {
    if (error instanceof ModuleError) return error;
    if (deadline.reason === 'deadline') return this.failures.deadline(call, url, deadline.timeoutMs, error);
    if (deadline.reason === 'caller-deadline') return this.failures.callerDeadline(call, url, error);
    if (deadline.reason === 'cancelled') return this.failures.cancelled(call, url, error);
    return this.failures.wire(call, url, error instanceof HttpFailure ? error : asHttpFailure(error));
  }

  /** Checks an `.info`/`@latest` body the way the go command would before trusting it. */
  private checkInfo(
    call: GoproxyCall,
    path: string,
    body: Buffer,
    expectedVersion?: string,
    needsTime = false,
  ): void {
    const url = new URL(`${this.base}${path}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (error) {
      throw this.failures.badAnswer(call, url, 'the answer is not JSON', error);
    }
    const version = isRecord(parsed) ? parsed['Version'] : undefined;
    if (typeof version !== 'string' || !isCanonicalVersion(version)) {
      throw this.failures.badAnswer(call, url, 'the answer has no canonical Version');
    }
    // What is stored must carry a Time: the go command orders pseudo-versions and answers
    // @latest from it.
    if (needsTime && (!isRecord(parsed) || typeof parsed['Time'] !== 'string')) {
      throw this.failures.badAnswer(call, url, 'the answer has no Time');
    }
    if (expectedVersion !== undefined && version !== expectedVersion) {
      throw this.failures.badAnswer(
        call,
        url,
        `the answer is for version ${version} instead of ${expectedVersion}`,
      );
    }
  }

  private tooLarge(call: GoproxyCall, url: URL, what: string, limit: number): ModuleError {
    return this.failures.badAnswer(call, url, `${what} larger than the limit of ${limit} bytes`);
  }

  private modulePath(call: GoproxyCall): string {
    try {
      return `/${escapePath(call.module).split('/').map(encodeURIComponent).join('/')}`;
    } catch (error) {
      throw rewrap(error, call);
    }
  }

  private versionSegment(call: GoproxyCall, version: string): string {
    try {
      return encodeURIComponent(escapeVersion(version));
    } catch (error) {
      throw rewrap(error, call);
    }
  }
}

function parseBaseUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch (error) {
    throw errors.invalidArgument('upstream.goproxy', `invalid upstream GOPROXY URL "${redactText(value)}"`, {
      cause: error,
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw errors.invalidArgument(
      'upstream.goproxy',
      `invalid upstream GOPROXY URL "${redactedBase(url)}": the scheme must be http or https`,
    );
  }
  return url;
}

function rewrap(error: unknown, call: GoproxyCall): ModuleError {
  if (isModuleError(error)) {
    return new ModuleError(error.kind, call.op, error.message, {
      module: call.module,
      version: call.version,
      cause: error,
    });
  }
  return toModuleError(error, call.op, { module: call.module, version: call.version });
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([key, value]) => [key.toLowerCase(), value]));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
