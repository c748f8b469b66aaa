import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { errors, isModuleError, toModuleError } from '@modproxy/errors';
import { isCanonicalVersion, isValidModulePath, isValidVersionQuery } from '@modproxy/gomod';
import { GoCommand, goCommandError, type GoCommandOptions } from './go-command';
import type { FetchedVersion, Upstream, UpstreamCallOptions } from './upstream';

/**
 * Options of the direct upstream: how the go command is run (`goBinary`, `env`, `netrcPath`,
 * `concurrency` default 4, `hostConcurrency` default concurrency - 1, `queueLimit` default 128,
 * `timeoutMs` default 300000, `workDir` default os.tmpdir(), `baseEnv` of which only the
 * allow-listed variables are passed on).
 */
export type DirectUpstreamOptions = GoCommandOptions;

/** What `go list -m -json` and `go mod download -json` print about one module. */
interface GoModuleJson {
  Path?: string;
  Version?: string;
  Versions?: string[];
  Time?: string;
  Origin?: unknown;
  Error?: string | { Err?: string };
  Info?: string;
  GoMod?: string;
  Zip?: string;
}

/**
 * Fetches modules from their version control systems with the go command, as Athens does by
 * default: every call runs in its own temp GOPATH with GOPROXY=direct, so nothing is shared
 * between calls and nothing is left behind once a fetched version is released.
 */
export class DirectUpstream implements Upstream {
  readonly name = 'direct';
  private readonly go: GoCommand;

  constructor(options: DirectUpstreamOptions = {}) {
    this.go = new GoCommand(options);
  }

  async list(module: string, options: UpstreamCallOptions = {}): Promise<string[]> {
    const op = 'upstream.direct.list';
    checkModule(op, module);
    // Without a version query, `go list -m -versions` lists the tags and resolves nothing else.
    const listed = await this.goJson(op, ['list', '-m', '-json', '-versions', module], {
      module,
      signal: options.signal,
    });
    return listed.Versions ?? [];
  }

  async latest(module: string, options: UpstreamCallOptions = {}): Promise<Buffer> {
    return this.resolve('upstream.direct.latest', module, 'latest', options);
  }

  async info(module: string, query: string, options: UpstreamCallOptions = {}): Promise<Buffer> {
    const op = 'upstream.direct.info';
    if (!isValidVersionQuery(query))
      throw errors.invalidArgument(op, `invalid version query "${query}"`, { module, version: query });
    return this.resolve(op, module, query, options);
  }

  async fetch(module: string, version: string, options: UpstreamCallOptions = {}): Promise<FetchedVersion> {
    const op = 'upstream.direct.fetch';
    checkModule(op, module);
    if (!isCanonicalVersion(version))
      throw errors.invalidArgument(op, `not a canonical version: "${version}"`, { module, version });
    const dir = await this.go.createTempDir();
    try {
      const result = await this.go.run(['mod', 'download', '-json', `${module}@${version}`], {
        dir,
        op,
        module,
        version,
        signal: options.signal,
      });
      const downloaded = parseModuleJson(op, result.stdout, result.stderr, result.exitCode, {
        module,
        version,
      });
      if (downloaded.Version !== version || !downloaded.Info || !downloaded.GoMod || !downloaded.Zip) {
        throw errors.badGateway(
          op,
          `go mod download answered ${downloaded.Version ?? 'no version'} without all files`,
          { module, version },
        );
      }
      const [info, mod, zipStats] = await Promise.all([
        readFile(downloaded.Info),
        readFile(downloaded.GoMod),
        stat(downloaded.Zip),
      ]);
      return new TempFetchedVersion(module, version, info, mod, downloaded.Zip, zipStats.size, () =>
        this.go.removeTempDir(dir),
      );
    } catch (error) {
      await this.go.removeTempDir(dir);
      throw wrap(error, op, module, version);
    }
  }

  /** Resolves a query with `go list -m`, which, unlike `go mod download`, fetches no zip. */
  private async resolve(
    op: string,
    module: string,
    query: string,
    options: UpstreamCallOptions,
  ): Promise<Buffer> {
    checkModule(op, module);
    return this.inTempDir(
      async (dir) => {
        const result = await this.go.run(['list', '-m', '-json', `${module}@${query}`], {
          dir,
          op,
          module,
          version: query,
          signal: options.signal,
        });
        const resolved = parseModuleJson(op, result.stdout, result.stderr, result.exitCode, {
          module,
          version: query,
        });
        if (!resolved.Version || !resolved.Time)
          throw errors.badGateway(op, `go list -m gave no version for ${query}`, { module, version: query });
        // The go command writes the .info file it would serve as a proxy next to the go.mod.
        const infoFile = resolved.GoMod?.replace(/\.mod$/, '.info');
        const written = infoFile ? await readFile(infoFile).catch(() => undefined) : undefined;
        if (written) return written;
        const info: Record<string, unknown> = { Version: resolved.Version, Time: resolved.Time };
        if (resolved.Origin !== undefined) info['Origin'] = resolved.Origin;
        return Buffer.from(JSON.stringify(info));
      },
      op,
      module,
      query,
    );
  }

  private async goJson(
    op: string,
    args: readonly string[],
    context: { module: string; version?: string; signal?: AbortSignal },
  ): Promise<GoModuleJson> {
    return this.inTempDir(
      async (dir) => {
        const result = await this.go.run(args, {
          dir,
          op,
          module: context.module,
          version: context.version,
          signal: context.signal,
        });
        return parseModuleJson(op, result.stdout, result.stderr, result.exitCode, context);
      },
      op,
      context.module,
      context.version,
    );
  }

  private async inTempDir<T>(
    body: (dir: string) => Promise<T>,
    op: string,
    module: string,
    version?: string,
  ): Promise<T> {
    const dir = await this.go.createTempDir();
    try {
      return await body(dir);
    } catch (error) {
      throw wrap(error, op, module, version);
    } finally {
      await this.go.removeTempDir(dir);
    }
  }
}

class TempFetchedVersion implements FetchedVersion {
  private released = false;
  private releasing: Promise<void> | undefined;

  constructor(
    readonly module: string,
    readonly version: string,
    readonly info: Buffer,
    readonly mod: Buffer,
    readonly zipPath: string,
    readonly zipSize: number,
    private readonly removeFiles: () => Promise<void>,
  ) {}

  openZip(): Readable {
    if (this.released)
      throw errors.failedPrecondition('upstream.direct.openZip', 'the fetched version was released', {
        module: this.module,
        version: this.version,
      });
    return createReadStream(this.zipPath);
  }

  release(): Promise<void> {
    this.released = true;
    this.releasing ??= this.removeFiles();
    return this.releasing;
  }
}

function checkModule(op: string, module: string): void {
  // A path starting with `-` would be read as a flag by the go command.
  if (!isValidModulePath(module))
    throw errors.invalidArgument(op, `malformed module path "${module}"`, { module });
}

/**
 * The JSON object the go command printed, or the error it reported: `go mod download -json`
 * reports in an Error field with a non-zero exit, `go list -m` on stderr.
 */
function parseModuleJson(
  op: string,
  stdout: string,
  stderr: string,
  exitCode: number | null,
  context: { module: string; version?: string },
): GoModuleJson {
  let parsed: GoModuleJson | undefined;
  try {
    parsed = stdout.trim() === '' ? undefined : (JSON.parse(stdout) as GoModuleJson);
  } catch {
    parsed = undefined;
  }
  const reported = typeof parsed?.Error === 'string' ? parsed.Error : parsed?.Error?.Err;
  if (reported) throw goCommandError(op, reported, context);
  if (exitCode !== 0) throw goCommandError(op, stderr || stdout, context);
  if (!parsed)
    throw errors.badGateway(op, `the go command printed no module: ${stderr.slice(0, 200)}`, context);
  return parsed;
}

function wrap(error: unknown, op: string, module: string, version?: string): Error {
  return isModuleError(error) ? error : toModuleError(error, op, { module, version });
}
