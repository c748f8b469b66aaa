import { execFile } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { escapePath, escapeVersion } from '@modproxy/gomod';

export interface GoDownloadResult {
  Path: string;
  Version: string;
  Sum?: string;
  GoModSum?: string;
  Error?: string;
}

/**
 * A GOPROXY laid out on disk (`<dir>/<escaped module>/@v/…`) in a temp dir, and the real go
 * command pointed at it with an isolated environment, so tests compare against the go
 * command itself rather than against our reading of it.
 */
export class FileSystemProxy {
  private constructor(readonly root: string) {}

  static async create(): Promise<FileSystemProxy> {
    return new FileSystemProxy(await mkdtemp(join(tmpdir(), 'modzip-goproxy-')));
  }

  get proxyDir(): string {
    return join(this.root, 'proxy');
  }

  /** Where the `.info`, `.mod` or `.zip` of `module@version` lives, named as the go command asks for it. */
  versionFile(module: string, version: string, ext: 'info' | 'mod' | 'zip'): string {
    return join(this.proxyDir, escapePath(module), '@v', `${escapeVersion(version)}.${ext}`);
  }

  async add(module: string, version: string, mod: Buffer | string, zip: Buffer): Promise<string> {
    const dir = join(this.proxyDir, escapePath(module), '@v');
    await mkdir(dir, { recursive: true });
    await writeFile(
      this.versionFile(module, version, 'info'),
      JSON.stringify({ Version: version, Time: '2024-01-02T03:04:05Z' }),
    );
    await writeFile(this.versionFile(module, version, 'mod'), mod);
    await writeFile(this.versionFile(module, version, 'zip'), zip);
    await appendFile(join(dir, 'list'), `${version}\n`);
    return this.versionFile(module, version, 'zip');
  }

  /** Runs `go mod download -json` for all of `targets` in one go command; results by `module@version`. */
  async goModDownload(targets: readonly string[]): Promise<Map<string, GoDownloadResult>> {
    const work = join(this.root, 'work');
    await mkdir(work, { recursive: true });
    const env: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'],
      HOME: this.root,
      GOENV: 'off',
      GOPATH: join(this.root, 'gopath'),
      GOMODCACHE: join(this.root, 'mod'),
      GOCACHE: join(this.root, 'cache'),
      GOPROXY: pathToFileURL(this.proxyDir).href,
      GOSUMDB: 'off',
      GONOSUMDB: '',
      GOPRIVATE: '',
      GOFLAGS: '-mod=mod -modcacherw',
      GOTOOLCHAIN: 'local',
      GO111MODULE: 'on',
    };
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        'go',
        ['mod', 'download', '-json', ...targets],
        { cwd: work, env, maxBuffer: 64 << 20, timeout: 120_000 },
        (error, out, err) => {
          // A failed download still prints its JSON (with Error) and exits 1; anything else is a broken run.
          if (error && out.trim() === '')
            reject(new Error(`go mod download failed: ${err || error.message}`));
          else resolve(out);
        },
      );
    });
    const results = new Map<string, GoDownloadResult>();
    for (const result of splitJsonObjects(stdout) as GoDownloadResult[])
      results.set(`${result.Path}@${result.Version}`, result);
    return results;
  }

  async remove(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }
}

/** The go command prints one JSON object after another; split them by brace depth. */
function splitJsonObjects(text: string): unknown[] {
  const objects: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else if (c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === '}' && --depth === 0) {
      objects.push(JSON.parse(text.slice(start, i + 1)));
    }
  }
  return objects;
}
