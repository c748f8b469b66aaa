import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import { errors, isModuleError, ModuleError, toModuleError } from '@modproxy/errors';
import { escapePath, escapeVersion, isCanonicalVersion, isPseudoVersion } from '@modproxy/gomod';
import { CallDeadline } from './call-deadline';
import { redactedBase, redactText } from './redact-url';
import type { FetchedVersion, Upstream, UpstreamCallOptions } from './upstream';

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
  /** A zip larger than this is refused (`bad-gateway`) and its download aborted. @default 500 MiB, the go command's limit */
  maxZipBytes?: number;
  /** A list, info or go.mod body larger than this is refused (`bad-gateway`). @default 16 MiB, the go command's go.mod limit */
  maxMetadataBytes?: number;
  /** Redirects followed per request; one more answers `bad-gateway`. @default 10 */
  maxRedirects?: number;
}

/** What an error message needs to say which request failed. */
interface CallContext {
  op: string;
  module: string;
  version?: string;
}

const MiB = 1024 * 1024;
/** Error bodies are read only this far: enough for a proxy's one-line explanation. */
const ERROR_BODY_READ_BYTES = 4096;
const ERROR_BODY_MESSAGE_CHARS = 200;
const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'ETIMEDOUT',
]);

/**
 * An upstream GOPROXY spoken to over HTTP (the GOPROXY protocol of the go command).
 *
 * Answers are translated at this edge: 404 → `not-found` and 410 → `gone` (with the upstream's
 * short explanation), any other status and any transport failure (refused, reset, DNS, TLS,
 * malformed body) → `bad-gateway`, a passed deadline → `timeout`, the caller's abort →
 * `cancelled`. `unavailable` is not used: from the go command's side an unreachable upstream
 * is a gateway failure like any other.
 */
export class GoproxyUpstream implements Upstream {
  readonly name: string;
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly zipTimeoutMs: number;
  private readonly tempDir: string;
  private readonly maxZipBytes: number;
  private readonly maxMetadataBytes: number;
  private readonly agent: Agent;
  private readonly dispatcher: Dispatcher;

  constructor(options: GoproxyUpstreamOptions) {
    const url = parseBaseUrl(options.url);
    this.base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
    this.name = redactedBase(url);
    this.headers = { 'user-agent': options.userAgent ?? 'modproxy', ...lowerCaseKeys(options.headers ?? {}) };
    if (url.username !== '' && this.headers['authorization'] === undefined) {
      const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
      this.headers['authorization'] = `Basic ${Buffer.from(credentials).toString('base64')}`;
    }
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.zipTimeoutMs = options.zipTimeoutMs ?? 300_000;
    this.tempDir = options.tempDir ?? tmpdir();
    this.maxZipBytes = options.maxZipBytes ?? 500 * MiB;
    this.maxMetadataBytes = options.maxMetadataBytes ?? 16 * MiB;
    this.agent = new Agent({ connect: { timeout: Math.min(this.timeoutMs, 10_000) } });
    this.dispatcher = this.agent.compose(
      interceptors.redirect({ maxRedirections: options.maxRedirects ?? 10 }),
    );
  }

  async list(module: string, options: UpstreamCallOptions = {}): Promise<string[]> {
    const call: CallContext = { op: 'upstream.goproxy.list', module };
    const path = `${this.modulePath(call)}/@v/list`;
    const body = await this.getBytes(call, path, options.signal);
    // Like the go command: the first field of each line, tagged versions only; anything a
    // proxy adds after it (timestamps) or that is not a canonical version is skipped.
    const versions = new Set<string>();
    for (const line of body.toString('utf8').split('\n')) {
      const first = line.trim().split(/\s+/)[0] ?? '';
      if (isCanonicalVersion(first) && !isPseudoVersion(first)) versions.add(first);
    }
    return [...versions];
  }

  async latest(module: string, options: UpstreamCallOptions = {}): Promise<Buffer> {
    const call: CallContext = { op: 'upstream.goproxy.latest', module };
    const path = `${this.modulePath(call)}/@latest`;
    const body = await this.getBytes(call, path, options.signal);
    this.checkInfo(call, path, body);
    return body;
  }

  async info(module: string, query: string, options: UpstreamCallOptions = {}): Promise<Buffer> {
    const call: CallContext = { op: 'upstream.goproxy.info', module, version: query };
    const path = `${this.modulePath(call)}/@v/${this.versionSegment(call, query)}.info`;
    const body = await this.getBytes(call, path, options.signal);
    this.checkInfo(call, path, body, isCanonicalVersion(query) ? query : undefined);
    return body;
  }

  async fetch(module: string, version: string, options: UpstreamCallOptions = {}): Promise<FetchedVersion> {
    const call: CallContext = { op: 'upstream.goproxy.fetch', module, version };
    if (!isCanonicalVersion(version)) {
      throw errors.invalidArgument(
        call.op,
        `version "${version}" is not canonical; resolve it with info first`,
        call,
      );
    }
    const prefix = `${this.modulePath(call)}/@v/${this.versionSegment(call, version)}`;
    const info = await this.getBytes(call, `${prefix}.info`, options.signal);
    this.checkInfo(call, `${prefix}.info`, info, version, true);

    const dir = await this.makeFetchDir(call);
    const zipFile = join(dir, 'module.zip');
    try {
      const [mod, zipSize] = await this.bothOrNeither(
        options.signal,
        (signal) => this.getBytes(call, `${prefix}.mod`, signal),
        (signal) => this.downloadZip(call, `${prefix}.zip`, zipFile, signal),
      );
      return fetchedVersion(call, version, { info, mod, zipSize }, dir, zipFile);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** Closes the kept-alive connections; calls after this fail. */
  async close(): Promise<void> {
    await this.agent.close();
  }

  /**
   * Runs the go.mod and zip downloads side by side: when one fails the other is aborted, and
   * the first failure is the one reported (the other's is only the echo of that abort).
   */
  private async bothOrNeither<A, B>(
    callerSignal: AbortSignal | undefined,
    first: (signal: AbortSignal) => Promise<A>,
    second: (signal: AbortSignal) => Promise<B>,
  ): Promise<[A, B]> {
    const shared = new AbortController();
    const onCallerAbort = (): void => shared.abort(callerSignal?.reason);
    if (callerSignal?.aborted) shared.abort(callerSignal.reason);
    else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    let failure: { error: unknown } | undefined;
    const settle = async <T>(run: Promise<T>): Promise<T | undefined> => {
      try {
        return await run;
      } catch (error) {
        failure ??= { error };
        shared.abort();
        return undefined;
      }
    };
    try {
      const [a, b] = await Promise.all([settle(first(shared.signal)), settle(second(shared.signal))]);
      if (failure !== undefined) throw failure.error;
      return [a as A, b as B];
    } finally {
      callerSignal?.removeEventListener('abort', onCallerAbort);
    }
  }

  private async makeFetchDir(call: CallContext): Promise<string> {
    try {
      await mkdir(this.tempDir, { recursive: true });
      return await mkdtemp(join(this.tempDir, 'goproxy-fetch-'));
    } catch (error) {
      throw toModuleError(error, call.op, call);
    }
  }

  private async downloadZip(
    call: CallContext,
    path: string,
    file: string,
    signal: AbortSignal,
  ): Promise<number> {
    return this.get(call, path, this.zipTimeoutMs, signal, async (response) => {
      const declared = Number(response.headers['content-length']);
      if (Number.isFinite(declared) && declared > this.maxZipBytes) {
        throw this.tooLarge(call, path, `zip of ${declared} bytes`, this.maxZipBytes);
      }
      let size = 0;
      const limit = new Transform({
        transform: (chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) => {
          size += chunk.length;
          if (size > this.maxZipBytes) done(this.tooLarge(call, path, 'zip', this.maxZipBytes));
          else done(null, chunk);
        },
      });
      await pipeline(response.body, limit, createWriteStream(file, { flags: 'wx' }));
      return size;
    });
  }

  private async getBytes(call: CallContext, path: string, signal: AbortSignal | undefined): Promise<Buffer> {
    return this.get(call, path, this.timeoutMs, signal, async (response) => {
      const { bytes, truncated } = await readAtMost(response.body, this.maxMetadataBytes);
      if (truncated) throw this.tooLarge(call, path, 'body', this.maxMetadataBytes);
      return bytes;
    });
  }

  /** One GET under one deadline; `read` consumes a 2xx body, anything else becomes an error here. */
  private async get<T>(
    call: CallContext,
    path: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    read: (response: Dispatcher.ResponseData) => Promise<T>,
  ): Promise<T> {
    const deadline = new CallDeadline(timeoutMs, signal);
    try {
      const response = await request(`${this.base}${path}`, {
        dispatcher: this.dispatcher,
        method: 'GET',
        headers: this.headers,
        signal: deadline.signal,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      if (response.statusCode < 200 || response.statusCode > 299) {
        throw await this.statusError(call, path, response);
      }
      try {
        return await read(response);
      } catch (error) {
        response.body.destroy();
        throw error;
      }
    } catch (error) {
      throw this.translate(error, call, path, deadline);
    } finally {
      deadline.dispose();
    }
  }

  private async statusError(
    call: CallContext,
    path: string,
    response: Dispatcher.ResponseData,
  ): Promise<ModuleError> {
    let explanation = '';
    try {
      const { bytes, truncated } = await readAtMost(response.body, ERROR_BODY_READ_BYTES);
      explanation = shortText(bytes.toString('utf8'), truncated);
    } catch {
      // The status alone says enough; a body that cannot be read adds nothing.
    }
    const status = `${response.statusCode} ${response.statusText ?? ''}`.trim();
    const message = `${this.name}${path}: ${status}${explanation === '' ? '' : `: ${explanation}`}`;
    const options = { module: call.module, version: call.version };
    if (response.statusCode === 404) return errors.notFound(call.op, message, options);
    if (response.statusCode === 410) return errors.gone(call.op, message, options);
    if (response.statusCode >= 300 && response.statusCode < 400) {
      return errors.badGateway(
        call.op,
        `${message} (redirect not followed: too many redirects or no Location)`,
        options,
      );
    }
    return errors.badGateway(call.op, message, options);
  }

  private translate(error: unknown, call: CallContext, path: string, deadline: CallDeadline): ModuleError {
    if (error instanceof ModuleError) return error;
    const where = `${this.name}${path}`;
    const options = { module: call.module, version: call.version, cause: error };
    if (deadline.reason === 'cancelled')
      return errors.cancelled(call.op, `${where}: cancelled by the caller`, options);
    if (deadline.reason === 'deadline') {
      return errors.timeout(call.op, `${where}: no complete answer within ${deadline.timeoutMs} ms`, options);
    }
    const code = errorCode(error);
    if (code !== undefined && TIMEOUT_CODES.has(code)) {
      return errors.timeout(call.op, `${where}: ${describe(error)}`, options);
    }
    return errors.badGateway(call.op, `${where}: ${describe(error)}`, options);
  }

  /** Checks an `.info`/`@latest` body the way the go command would before trusting it. */
  private checkInfo(
    call: CallContext,
    path: string,
    body: Buffer,
    expectedVersion?: string,
    needsTime = false,
  ): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (error) {
      throw errors.badGateway(call.op, `${this.name}${path}: invalid JSON in the answer`, {
        ...call,
        cause: error,
      });
    }
    const version = isRecord(parsed) ? parsed['Version'] : undefined;
    if (typeof version !== 'string' || !isCanonicalVersion(version)) {
      throw errors.badGateway(call.op, `${this.name}${path}: the answer has no canonical Version`, call);
    }
    // What is stored must carry a Time: the go command orders pseudo-versions and answers
    // @latest from it.
    if (needsTime && (!isRecord(parsed) || typeof parsed['Time'] !== 'string')) {
      throw errors.badGateway(call.op, `${this.name}${path}: the answer has no Time`, call);
    }
    if (expectedVersion !== undefined && version !== expectedVersion) {
      throw errors.badGateway(
        call.op,
        `${this.name}${path}: the proxy answered for version ${version} instead of ${expectedVersion}`,
        call,
      );
    }
  }

  private tooLarge(call: CallContext, path: string, what: string, limit: number): ModuleError {
    return errors.badGateway(
      call.op,
      `${this.name}${path}: ${what} larger than the limit of ${limit} bytes`,
      call,
    );
  }

  private modulePath(call: CallContext): string {
    try {
      return `/${escapePath(call.module).split('/').map(encodeURIComponent).join('/')}`;
    } catch (error) {
      throw rewrap(error, call);
    }
  }

  private versionSegment(call: CallContext, version: string): string {
    try {
      return encodeURIComponent(escapeVersion(version));
    } catch (error) {
      throw rewrap(error, call);
    }
  }
}

function fetchedVersion(
  call: CallContext,
  version: string,
  content: Pick<FetchedVersion, 'info' | 'mod' | 'zipSize'>,
  dir: string,
  zipFile: string,
): FetchedVersion {
  let released = false;
  return {
    module: call.module,
    version,
    ...content,
    zipPath: zipFile,
    openZip(): Readable {
      if (released) {
        throw errors.failedPrecondition(call.op, 'the fetched zip was already released', call);
      }
      return createReadStream(zipFile);
    },
    async release(): Promise<void> {
      released = true;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Reads a body up to `limit` bytes; when there is more, stops reading and drops the connection. */
async function readAtMost(body: Readable, limit: number): Promise<{ bytes: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = chunk as Buffer;
    if (size + buffer.length > limit) {
      chunks.push(buffer.subarray(0, limit - size));
      body.destroy();
      return { bytes: Buffer.concat(chunks), truncated: true };
    }
    chunks.push(buffer);
    size += buffer.length;
  }
  return { bytes: Buffer.concat(chunks), truncated: false };
}

function shortText(text: string, truncated: boolean): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  if (oneLine.length <= ERROR_BODY_MESSAGE_CHARS && !truncated) return oneLine;
  return `${oneLine.slice(0, ERROR_BODY_MESSAGE_CHARS)}…`;
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

function rewrap(error: unknown, call: CallContext): ModuleError {
  if (isModuleError(error)) {
    return new ModuleError(error.kind, call.op, error.message, {
      module: call.module,
      version: call.version,
      cause: error,
    });
  }
  return toModuleError(error, call.op, call);
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([key, value]) => [key.toLowerCase(), value]));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorCode(error: unknown): string | undefined {
  const code = isRecord(error) ? error['code'] : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** Node reports a refused connection to every address of a host as an AggregateError with no message. */
function describe(error: unknown): string {
  if (error instanceof AggregateError && error.message === '') {
    const inner = error.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e)));
    return inner.join('; ') || (errorCode(error) ?? 'connection failed');
  }
  if (error instanceof Error) return error.message || (errorCode(error) ?? error.name);
  return String(error);
}
