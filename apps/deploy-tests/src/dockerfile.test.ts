import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, posix } from 'node:path';
import { validate, ValidationSeverity, type ValidatorSettings } from 'dockerfile-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { VCS_APPS } from './app-configs';
import { DockerIgnore } from './dockerignore';
import { DockerfileModel } from './dockerfile-model';
import { APPS, DOCKERFILE, DOCKERIGNORE, REPO_ROOT } from './repo-paths';

/** The Node.js line that is Active LTS on 2026-12-01: 26 ("Lithium"), LTS since 2026-10-28. */
const NODE_LTS_MAJOR = 26;

/** Every rule of dockerfile-utils (the linter of VS Code's Docker language server) as an error. */
const STRICT: ValidatorSettings = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
};

function lint(text: string): string[] {
  return validate(text, STRICT).map(
    (diagnostic) => `line ${diagnostic.range.start.line + 1}: ${diagnostic.message}`,
  );
}

describe('Dockerfile', () => {
  let dockerfile: DockerfileModel;
  let text: string;

  beforeAll(() => {
    text = readFileSync(DOCKERFILE, 'utf8');
    dockerfile = new DockerfileModel(text);
  });

  it('passes the linter with every rule as an error (and the linter does catch mistakes)', () => {
    expect(lint(text)).toEqual([]);
    expect(lint('FROM node:26\nCMD ["a"]\nCMD ["b"]\nworkdir app\n')).toHaveLength(3);
  });

  it('has one target per app, each ending as a numeric non-root user', () => {
    for (const app of APPS) {
      const image = dockerfile.image(app);
      expect(image.user, app).toMatch(/^[1-9]\d*(:[1-9]\d*)?$/);
    }
  });

  it(`runs on Node.js ${NODE_LTS_MAJOR}, the current LTS line, pinned to a release; the repository itself keeps engines >= 20.19`, () => {
    const node = dockerfile.globalArgs['NODE_IMAGE'] ?? '';
    expect(node).toMatch(new RegExp(`^node:${NODE_LTS_MAJOR}\\.\\d+\\.\\d+-[a-z]+-slim$`));
    for (const app of APPS) expect(dockerfile.image(app).baseImage, app).toBe(node);
    for (const stage of dockerfile.stages) {
      // Every image from outside is pinned to a release, never `latest` or a bare major.
      if (!dockerfile.stages.some((other) => other.name === stage.base)) {
        expect(stage.base, stage.name).toMatch(/^[a-z0-9./-]+:\d+\.\d+\.\d+(-[a-z0-9-]+)?$/);
      }
    }
    const packageJson = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      engines: { node: string };
    };
    expect(packageJson.engines.node).toBe('>=20.19');
  });

  it('is multi-stage: production dependencies from the lock in their own stage, the bundles built in another', () => {
    const run = (stage: string) =>
      dockerfile
        .stage(stage)
        .instructions.filter((instruction) => instruction.getKeyword() === 'RUN')
        .map((instruction) => instruction.getArgumentsContent() ?? '')
        .join('\n');
    expect(run('deps')).toMatch(/npm ci --omit=dev\b/);
    expect(run('build')).toMatch(/npm ci\b/);
    expect(run('build')).toMatch(/scripts\/build-app\.mjs/);
    for (const app of APPS) {
      const copies = dockerfile.image(app).copies;
      expect(copies.find((copy) => copy.destination === '/app/node_modules')?.from, app).toBe('deps');
      expect(
        copies.find((copy) => copy.sources.includes(`/src/dist/apps/${app}`))?.destination,
        `${app} gets its own bundle`,
      ).toBe(`/app/dist/apps/${app}`);
      // Nothing but its own bundle: no sources, no other app, no dev dependencies.
      for (const copy of copies.filter((candidate) => candidate.from === 'build')) {
        expect(copy.sources, app).toEqual([`/src/dist/apps/${app}`]);
      }
    }
  });

  it('copies only files that exist in the repository and that .dockerignore lets into the build context', () => {
    const ignore = DockerIgnore.read(DOCKERIGNORE);
    const sources = dockerfile.stages.flatMap((stage) =>
      stage.instructions
        .filter(
          (instruction) =>
            instruction.getKeyword() === 'COPY' && !/--from=/.test(instruction.getTextContent()),
        )
        .flatMap((instruction) =>
          instruction
            .getArguments()
            .slice(0, -1)
            .map((argument) => argument.getValue()),
        ),
    );
    expect(sources.length).toBeGreaterThan(5);
    for (const source of sources) {
      expect(existsSync(join(REPO_ROOT, source)), `${source} exists`).toBe(true);
      expect(ignore.excludes(source), `${source} is in the build context`).toBe(false);
    }
    // …and keeps out what must never be in it.
    for (const path of [
      'node_modules',
      'apps/proxy/node_modules/x',
      'dist/apps/proxy/main.js',
      '.git/config',
      'tmp/x',
      '.env',
      'data/storage',
    ]) {
      expect(ignore.excludes(path), path).toBe(true);
    }
  });

  it('copies from stages that exist', () => {
    const names = new Set(dockerfile.stages.map((stage) => stage.name));
    for (const app of APPS) {
      for (const copy of dockerfile.image(app).copies)
        if (copy.from) expect(names.has(copy.from), copy.from).toBe(true);
    }
  });

  it('starts each app as everywhere else: node --import <instrument.js> --enable-source-maps <main.js> of its own bundle', () => {
    for (const app of APPS) {
      const image = dockerfile.image(app);
      expect(image.entrypoint, app).toEqual([]);
      expect(image.cmd, app).toEqual([
        'node',
        '--import',
        `/app/dist/apps/${app}/instrument.js`,
        '--enable-source-maps',
        `/app/dist/apps/${app}/main.js`,
      ]);
      for (const file of image.cmd.filter((arg) => arg.startsWith('/app/'))) {
        const copied = image.copies.some((copy) =>
          file.startsWith(`${copy.destination.replace(/\/$/, '')}/`),
        );
        expect(copied, `${app}: ${file} is in the image`).toBe(true);
        expect(existsSync(join(REPO_ROOT, posix.relative('/app', file))), `${file} is built`).toBe(true);
      }
    }
  });

  it('gives the apps that fetch from VCS git and the go command, and the storage service neither', () => {
    for (const app of APPS) {
      const chain = dockerfile.chain(app).map((stage) => stage.name);
      expect(chain.includes('runtime-vcs'), app).toBe(VCS_APPS.has(app));
      if (!VCS_APPS.has(app)) continue;
      const image = dockerfile.image(app);
      expect(image.env['PATH']?.split(':')[0], app).toBe('/usr/local/go/bin');
      expect(
        image.copies.some((copy) => copy.from === 'go' && copy.destination === '/usr/local/go'),
        app,
      ).toBe(true);
      // The go command writes no telemetry to a read-only home.
      expect(image.env['GOTELEMETRY']).toBe('off');
    }
    const installs = dockerfile
      .stage('runtime-vcs')
      .instructions.map((instruction) => instruction.getArgumentsContent() ?? '')
      .join('\n');
    expect(installs).toMatch(/apt-get install[^\n]*\bgit\b/);
  });

  it('has a health check per app, run with the image’s node and health script', () => {
    for (const app of APPS) {
      const healthcheck = dockerfile.image(app).healthcheck ?? [];
      expect(healthcheck.slice(0, 2), app).toEqual(['node', '/app/scripts/healthcheck.mjs']);
      expect(healthcheck[2], app).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/readyz$/);
    }
  });

  it('ships only production dependencies, and every package the bundles import is one', () => {
    const packageJson = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
    for (const app of APPS) {
      for (const bundle of ['main.js', 'instrument.js']) {
        const code = readFileSync(join(REPO_ROOT, 'dist', 'apps', app, bundle), 'utf8');
        const specifiers = [
          ...code.matchAll(
            /(?:^|[\s;])(?:import|export)\b[^'"]*?from\s*["']([^"'./][^"']*)["']|import\(\s*["']([^"'./][^"']*)["']\s*\)/gm,
          ),
        ].map((match) => match[1] ?? match[2] ?? '');
        expect(specifiers.length, `${app}/${bundle}`).toBeGreaterThan(0);
        for (const specifier of specifiers) {
          if (builtins.has(specifier) || builtins.has(specifier.split('/')[0] ?? '')) continue;
          const name = specifier.startsWith('@')
            ? specifier.split('/').slice(0, 2).join('/')
            : specifier.split('/')[0];
          expect(packageJson.dependencies, `${app}/${bundle} imports ${specifier}`).toHaveProperty([
            name ?? '',
          ]);
        }
      }
    }
  });
});
