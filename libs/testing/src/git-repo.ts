import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { runCommandOrThrow } from './run-command';

export interface GitRepoOptions {
  /** Environment for git (PATH and a test-only git config; nothing else is inherited). */
  env: Record<string, string>;
  /**
   * Commit times are taken from this clock, advanced by one hour per commit, so that
   * pseudo-versions are predictable and always increase. Default 2024-01-01T00:00:00Z.
   */
  startTime?: Date;
}

export interface GitCommit {
  hash: string;
  /** Committer time, which is what pseudo-versions encode. */
  time: Date;
}

/** A git repository a fixture module lives in, with deterministic commit times. */
export class GitRepo {
  readonly dir: string;
  private readonly env: Record<string, string>;
  private clock: number;

  private constructor(dir: string, options: GitRepoOptions) {
    this.dir = dir;
    this.env = options.env;
    this.clock = (options.startTime ?? new Date('2024-01-01T00:00:00Z')).getTime();
  }

  static async init(dir: string, options: GitRepoOptions): Promise<GitRepo> {
    await mkdir(dir, { recursive: true });
    const repo = new GitRepo(dir, options);
    await repo.git('init', '-q', '-b', 'main');
    return repo;
  }

  /** Writes the files (paths relative to the repo, `null` deletes) and commits all changes. */
  async commit(files: Record<string, string | null>, message: string): Promise<GitCommit> {
    for (const [path, content] of Object.entries(files)) {
      const file = join(this.dir, path);
      if (content === null) {
        await this.git('rm', '-q', '--', path);
      } else {
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, content);
      }
    }
    await this.git('add', '-A');
    this.clock += 3_600_000;
    const time = new Date(this.clock);
    const stamp = `${Math.floor(this.clock / 1000)} +0000`;
    await this.git('commit', '-q', '--allow-empty', '-m', message, {
      GIT_AUTHOR_DATE: stamp,
      GIT_COMMITTER_DATE: stamp,
    });
    return { hash: await this.revParse('HEAD'), time };
  }

  /** Creates a lightweight tag on `commit` (default HEAD). */
  async tag(name: string, commit = 'HEAD'): Promise<void> {
    await this.git('tag', name, commit);
  }

  async revParse(rev: string): Promise<string> {
    return (await this.git('rev-parse', '--verify', `${rev}^{commit}`)).trim();
  }

  /** Runs git in the repo; a trailing object adds environment variables. */
  async git(...args: Array<string | Record<string, string>>): Promise<string> {
    const strings = args.filter((arg): arg is string => typeof arg === 'string');
    const extraEnv = args.find((arg): arg is Record<string, string> => typeof arg !== 'string') ?? {};
    const result = await runCommandOrThrow(
      'git',
      [
        '-c',
        'user.name=Fixture',
        '-c',
        'user.email=fixture@example.test',
        '-c',
        'commit.gpgsign=false',
        '-c',
        'tag.gpgsign=false',
        ...strings,
      ],
      {
        cwd: this.dir,
        env: { ...this.env, ...extraEnv },
      },
    );
    return result.stdout;
  }
}
