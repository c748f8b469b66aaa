import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GitRepo, type GitCommit } from './git-repo';
import { createTempDir, removeDir } from './temp-dir';

/** The host every fixture module lives on; `.test` is reserved, so it can never reach a real server. */
export const FIXTURE_HOST = 'example.test';

export interface FixtureModulesOptions {
  /** Parent of the fixture's temp dir. Default `os.tmpdir()`. */
  parentDir?: string;
  /**
   * The go build cache. Default a cache shared by all test runs under `os.tmpdir()`, because
   * it only holds compiled packages (never modules) and rebuilding the standard library for
   * every test would take minutes on a small machine.
   */
  goCache?: string;
}

export interface FixtureVersion {
  /** The canonical version (a pseudo-version for an untagged commit). */
  version: string;
  /** The git tag the version comes from; absent for a pseudo-version. */
  tag?: string;
  commit: string;
  /** Commit time; the `.info` Time of the version. */
  time: Date;
  /** What the fixture's function returns at this version. */
  returns: string;
}

export interface FixtureModule {
  /** Module path, as in go.mod. */
  path: string;
  /** The path escaped for the module cache and GOPROXY URLs (`!` before lowercased capitals). */
  escapedPath: string;
  /** The git repository the module is in (several modules may share one). */
  repo: GitRepo;
  /** The remote the go command asks git for; the test git config rewrites it to `repo.dir`. */
  repoUrl: string;
  /** The module's directory inside the repository ('' for the root). */
  subdir: string;
  /** The package to import and the function to call; the function takes nothing and returns a string. */
  importPath: string;
  packageName: string;
  func: string;
  /** Tagged versions in semver order: what `go list -m -versions` and `/@v/list` give. */
  versions: string[];
  /** What `<path>@latest` resolves to. */
  latest: string;
  /** Every version the fixture knows, tagged and pseudo. */
  byVersion: Record<string, FixtureVersion>;
  /** An untagged commit, reachable as `<path>@<commit>`, resolving to a pseudo-version. */
  untagged?: FixtureVersion;
}

export interface FixtureModules {
  /** The temp dir holding everything below. */
  root: string;
  /** Where the git repositories are. */
  reposDir: string;
  /** The test-only git config that maps `https://example.test/` to `reposDir`. */
  gitConfigPath: string;
  /**
   * A complete environment for running the go command in direct mode against the fixtures:
   * its own GOPATH, GOMODCACHE, HOME and git config, GOPROXY=direct, no checksum database.
   */
  env: Record<string, string>;
  /**
   * The few variables a go runner that manages its own GOPATH/GOMODCACHE/GOPROXY needs on top
   * of its environment (git config, no prompts, no checksum database), e.g. `DirectUpstream`'s `env`.
   */
  directEnv: Record<string, string>;
  /** Several tags (v1.0.0, v1.1.0, v1.2.0-pre, v1.10.0) and an untagged commit after the last. */
  hello: FixtureModule;
  /** The v1 module of a repository that also holds a `/v2` module in `v2/`. */
  major: FixtureModule;
  /** `<major>/v2` in the `v2/` subdirectory, tags v2.0.0 and v2.1.0. */
  majorV2: FixtureModule;
  /** Capital letters in the path, so escaped paths differ from plain ones. */
  mixedCase: FixtureModule;
  /** No go.mod; tags v1.0.0 and v3.0.0, so v3 is `v3.0.0+incompatible`. */
  legacy: FixtureModule;
  /** A module whose `sub/` directory is another module; `sub/` is not in its zip. */
  nested: FixtureModule;
  /** The `sub/` module of `nested`, tag `sub/v1.0.0`. */
  nestedSub: FixtureModule;
  /** No tags at all: only pseudo-versions, and `@latest` is one. */
  untagged: FixtureModule;
  all: FixtureModule[];
  /** A module path on the fixture host with no repository behind it. */
  missingModule: string;
  /** Removes everything. Idempotent. */
  close(): Promise<void>;
}

/** Builds real git repositories for the fixture modules and an environment to fetch them with no network. */
export async function createFixtureModules(options: FixtureModulesOptions = {}): Promise<FixtureModules> {
  const root = await createTempDir('modproxy-fixtures-', options.parentDir);
  try {
    return await build(root, options);
  } catch (error) {
    await removeDir(root);
    throw error;
  }
}

async function build(root: string, options: FixtureModulesOptions): Promise<FixtureModules> {
  const reposDir = join(root, 'repos');
  const home = join(root, 'home');
  const gitConfigPath = join(root, 'gitconfig');
  await mkdir(reposDir, { recursive: true });
  await mkdir(home, { recursive: true });
  // `protocol.file.allow=always` because git may refuse file:// when a caller marks the
  // URL as coming from a user (GIT_PROTOCOL_FROM_USER=0).
  await writeFile(
    gitConfigPath,
    [
      `[url "file://${reposDir}/"]`,
      `\tinsteadOf = https://${FIXTURE_HOST}/`,
      `[protocol "file"]`,
      `\tallow = always`,
      `[init]`,
      `\tdefaultBranch = main`,
      `[advice]`,
      `\tdetachedHead = false`,
      '',
    ].join('\n'),
  );

  const directEnv: Record<string, string> = {
    GIT_CONFIG_GLOBAL: gitConfigPath,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GOSUMDB: 'off',
    GONOSUMDB: FIXTURE_HOST,
    GOTOOLCHAIN: 'local',
    // The go command looks up paths without a VCS qualifier (e.g. the bare host `example.test`,
    // which it tries as a module root) with an HTTPS `?go-get=1` request. Through a proxy on a
    // closed loopback port that fails at once, with no DNS query leaving the machine. Loopback
    // itself (our proxy, gRPC between services) is never proxied.
    HTTPS_PROXY: 'http://127.0.0.1:9',
    HTTP_PROXY: 'http://127.0.0.1:9',
    NO_PROXY: '127.0.0.1,localhost,::1',
  };
  const gopath = join(root, 'gopath');
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    TMPDIR: tmpdir(),
    ...directEnv,
    GOPATH: gopath,
    GOMODCACHE: join(gopath, 'pkg', 'mod'),
    GOCACHE: options.goCache ?? join(tmpdir(), 'modproxy-test-gocache'),
    GOPROXY: 'direct',
    GOFLAGS: '-modcacherw',
    GOENV: 'off',
    GOTELEMETRY: 'off',
    GO111MODULE: 'on',
    GOWORK: 'off',
    CGO_ENABLED: '0',
  };
  const gitEnv = {
    PATH: env['PATH'] ?? '',
    HOME: home,
    GIT_CONFIG_GLOBAL: gitConfigPath,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
  };
  const newRepo = (name: string): Promise<GitRepo> => GitRepo.init(join(reposDir, name), { env: gitEnv });

  const [hello, [major, majorV2], mixedCase, legacy, [nested, nestedSub], untagged] = await Promise.all([
    buildHello(await newRepo('hello')),
    buildMajor(await newRepo('major')),
    buildMixedCase(await newRepo('MixedCase')),
    buildLegacy(await newRepo('legacy')),
    buildNested(await newRepo('nested')),
    buildUntagged(await newRepo('untagged')),
  ]);

  let closed = false;
  return {
    root,
    reposDir,
    gitConfigPath,
    env,
    directEnv,
    hello,
    major,
    majorV2,
    mixedCase,
    legacy,
    nested,
    nestedSub,
    untagged,
    all: [hello, major, majorV2, mixedCase, legacy, nested, nestedSub, untagged],
    missingModule: `${FIXTURE_HOST}/missing.git`,
    async close() {
      if (closed) return;
      closed = true;
      await removeDir(root);
    },
  };
}

/** Module path escaping of the module cache and GOPROXY URLs. */
export function escapeFixturePath(path: string): string {
  return path.replace(/[A-Z]/g, (letter) => `!${letter.toLowerCase()}`);
}

/** The pseudo-version form `vX.Y.Z-[pre.]0.yyyymmddhhmmss-abcdefabcdef` for a commit. */
export function pseudoVersionFor(base: string, commit: GitCommit): string {
  const stamp = commit.time.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `${base}${stamp}-${commit.hash.slice(0, 12)}`;
}

interface ModuleSpec {
  repo: GitRepo;
  path: string;
  subdir: string;
  packageName: string;
  func: string;
}

function goSource(packageName: string, func: string, returns: string): string {
  return `package ${packageName}\n\n// ${func} reports which version of the fixture it comes from.\nfunc ${func}() string { return ${JSON.stringify(returns)} }\n`;
}

function goMod(path: string): string {
  return `module ${path}\n\ngo 1.21\n`;
}

function fixtureModule(
  spec: ModuleSpec,
  tagged: FixtureVersion[],
  latest: string,
  untagged?: FixtureVersion,
): FixtureModule {
  const byVersion: Record<string, FixtureVersion> = {};
  for (const version of [...tagged, ...(untagged ? [untagged] : [])]) byVersion[version.version] = version;
  const repoName = spec.path.slice(FIXTURE_HOST.length + 1).replace(/\.git(\/.*)?$/, '');
  return {
    path: spec.path,
    escapedPath: escapeFixturePath(spec.path),
    repo: spec.repo,
    repoUrl: `https://${FIXTURE_HOST}/${repoName}`,
    subdir: spec.subdir,
    importPath: spec.path,
    packageName: spec.packageName,
    func: spec.func,
    versions: tagged.map((version) => version.version),
    latest,
    byVersion,
    ...(untagged ? { untagged } : {}),
  };
}

async function tagged(
  repo: GitRepo,
  commit: GitCommit,
  tag: string,
  version: string,
  returns: string,
): Promise<FixtureVersion> {
  await repo.tag(tag, commit.hash);
  return { version, tag, commit: commit.hash, time: commit.time, returns };
}

async function buildHello(repo: GitRepo): Promise<FixtureModule> {
  const spec: ModuleSpec = {
    repo,
    path: `${FIXTURE_HOST}/hello.git`,
    subdir: '',
    packageName: 'hello',
    func: 'Hello',
  };
  const versions: FixtureVersion[] = [];
  // Commit order is semver order; v1.10.0 last so that it is the base of the pseudo-version.
  for (const version of ['v1.0.0', 'v1.1.0', 'v1.2.0-pre', 'v1.10.0']) {
    const returns = `hello ${version}`;
    const files = { 'go.mod': goMod(spec.path), 'hello.go': goSource('hello', 'Hello', returns) };
    versions.push(
      await tagged(repo, await repo.commit(files, `hello ${version}`), version, version, returns),
    );
  }
  const returns = 'hello untagged';
  const head = await repo.commit(
    { 'hello.go': goSource('hello', 'Hello', returns) },
    'untagged work after v1.10.0',
  );
  const untagged: FixtureVersion = {
    version: pseudoVersionFor('v1.10.1-0.', head),
    commit: head.hash,
    time: head.time,
    returns,
  };
  return fixtureModule(spec, versions, 'v1.10.0', untagged);
}

async function buildMajor(repo: GitRepo): Promise<[FixtureModule, FixtureModule]> {
  const v1: ModuleSpec = {
    repo,
    path: `${FIXTURE_HOST}/major.git`,
    subdir: '',
    packageName: 'major',
    func: 'Major',
  };
  const v2: ModuleSpec = {
    repo,
    path: `${FIXTURE_HOST}/major.git/v2`,
    subdir: 'v2',
    packageName: 'major',
    func: 'Major',
  };
  const first = await repo.commit(
    { 'go.mod': goMod(v1.path), 'major.go': goSource('major', 'Major', 'major v1.0.0') },
    'major v1',
  );
  const v100 = await tagged(repo, first, 'v1.0.0', 'v1.0.0', 'major v1.0.0');
  const v2Versions: FixtureVersion[] = [];
  for (const version of ['v2.0.0', 'v2.1.0']) {
    const returns = `major ${version}`;
    const commit = await repo.commit(
      { 'v2/go.mod': goMod(v2.path), 'v2/major.go': goSource('major', 'Major', returns) },
      `major ${version}`,
    );
    v2Versions.push(await tagged(repo, commit, version, version, returns));
  }
  return [fixtureModule(v1, [v100], 'v1.0.0'), fixtureModule(v2, v2Versions, 'v2.1.0')];
}

async function buildMixedCase(repo: GitRepo): Promise<FixtureModule> {
  const spec: ModuleSpec = {
    repo,
    path: `${FIXTURE_HOST}/MixedCase.git`,
    subdir: '',
    packageName: 'mixedcase',
    func: 'Greet',
  };
  const versions: FixtureVersion[] = [];
  for (const version of ['v1.0.0', 'v1.1.0']) {
    const returns = `MixedCase ${version}`;
    const commit = await repo.commit(
      { 'go.mod': goMod(spec.path), 'greet.go': goSource('mixedcase', 'Greet', returns) },
      `MixedCase ${version}`,
    );
    versions.push(await tagged(repo, commit, version, version, returns));
  }
  return fixtureModule(spec, versions, 'v1.1.0');
}

async function buildLegacy(repo: GitRepo): Promise<FixtureModule> {
  const spec: ModuleSpec = {
    repo,
    path: `${FIXTURE_HOST}/legacy.git`,
    subdir: '',
    packageName: 'legacy',
    func: 'Legacy',
  };
  const first = await repo.commit(
    { 'legacy.go': goSource('legacy', 'Legacy', 'legacy v1.0.0') },
    'legacy v1, before modules',
  );
  const v1 = await tagged(repo, first, 'v1.0.0', 'v1.0.0', 'legacy v1.0.0');
  const second = await repo.commit(
    { 'legacy.go': goSource('legacy', 'Legacy', 'legacy v3.0.0') },
    'legacy v3, still no go.mod',
  );
  const v3 = await tagged(repo, second, 'v3.0.0', 'v3.0.0+incompatible', 'legacy v3.0.0');
  return fixtureModule(spec, [v1, v3], 'v3.0.0+incompatible');
}

async function buildNested(repo: GitRepo): Promise<[FixtureModule, FixtureModule]> {
  const parent: ModuleSpec = {
    repo,
    path: `${FIXTURE_HOST}/nested.git`,
    subdir: '',
    packageName: 'nested',
    func: 'Nested',
  };
  const sub: ModuleSpec = {
    repo,
    path: `${FIXTURE_HOST}/nested.git/sub`,
    subdir: 'sub',
    packageName: 'sub',
    func: 'Sub',
  };
  const commit = await repo.commit(
    {
      'go.mod': goMod(parent.path),
      'nested.go': goSource('nested', 'Nested', 'nested v1.0.0'),
      'sub/go.mod': goMod(sub.path),
      'sub/sub.go': goSource('sub', 'Sub', 'sub v1.0.0'),
      'sub/README': 'belongs to the sub module only\n',
    },
    'nested module with a sub module',
  );
  const parentVersion = await tagged(repo, commit, 'v1.0.0', 'v1.0.0', 'nested v1.0.0');
  const subVersion = await tagged(repo, commit, 'sub/v1.0.0', 'v1.0.0', 'sub v1.0.0');
  return [fixtureModule(parent, [parentVersion], 'v1.0.0'), fixtureModule(sub, [subVersion], 'v1.0.0')];
}

async function buildUntagged(repo: GitRepo): Promise<FixtureModule> {
  const spec: ModuleSpec = {
    repo,
    path: `${FIXTURE_HOST}/untagged.git`,
    subdir: '',
    packageName: 'untagged',
    func: 'Untagged',
  };
  await repo.commit(
    { 'go.mod': goMod(spec.path), 'untagged.go': goSource('untagged', 'Untagged', 'untagged first') },
    'first',
  );
  const returns = 'untagged second';
  const head = await repo.commit({ 'untagged.go': goSource('untagged', 'Untagged', returns) }, 'second');
  const untagged: FixtureVersion = {
    version: pseudoVersionFor('v0.0.0-', head),
    commit: head.hash,
    time: head.time,
    returns,
  };
  return fixtureModule(spec, [], untagged.version, untagged);
}
