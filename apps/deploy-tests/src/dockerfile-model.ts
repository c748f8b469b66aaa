import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { type Copy, DockerfileParser, type Instruction } from 'dockerfile-ast';

/** One `COPY`, with its sources as written and its destination made absolute. */
export interface CopyInstruction {
  /** The stage named by `--from`, or `undefined` for the build context. */
  from: string | undefined;
  sources: string[];
  destination: string;
  line: number;
}

/** One `FROM … AS name` and the instructions up to the next `FROM`. */
export interface DockerStage {
  name: string | undefined;
  /** The image or stage it starts from, ARGs expanded. */
  base: string;
  instructions: Instruction[];
}

/**
 * What a target of the Dockerfile runs with: the configuration a container gets from its image,
 * inherited through the stages it is built from (`FROM runtime AS proxy`).
 */
export interface ImageConfig {
  target: string;
  /** The image outside this file the chain starts from, e.g. `node:26.13.0-trixie-slim`. */
  baseImage: string;
  user: string | undefined;
  workdir: string;
  env: Record<string, string>;
  entrypoint: string[];
  cmd: string[];
  /** HEALTHCHECK's command in exec form (after `CMD`), if any. */
  healthcheck: string[] | undefined;
  expose: number[];
  /** Every COPY of the chain, oldest first. */
  copies: CopyInstruction[];
}

/** The Dockerfile read into stages, enough to tell what each target's container runs. */
export class DockerfileModel {
  readonly stages: DockerStage[];
  readonly globalArgs: Record<string, string>;

  constructor(readonly text: string) {
    const dockerfile = DockerfileParser.parse(text);
    this.globalArgs = {};
    for (const arg of dockerfile.getInitialARGs()) {
      const property = arg.getProperty();
      const name = property?.getName();
      if (name) this.globalArgs[name] = property?.getValue() ?? '';
    }
    this.stages = dockerfile.getFROMs().map((from) => {
      const image = dockerfile.getContainingImage(from.getRange().start);
      return {
        name: from.getBuildStage() ?? undefined,
        base: expand(from.getImage() ?? '', this.globalArgs),
        instructions: image ? image.getInstructions() : [],
      };
    });
  }

  static read(path: string): DockerfileModel {
    return new DockerfileModel(readFileSync(path, 'utf8'));
  }

  stage(name: string): DockerStage {
    const stage = this.stages.find((candidate) => candidate.name === name);
    if (!stage) throw new Error(`the Dockerfile has no stage named ${name}`);
    return stage;
  }

  /** The stages `name` is built from, its first ancestor outside this file first. */
  chain(name: string): DockerStage[] {
    const chain: DockerStage[] = [];
    let current: DockerStage | undefined = this.stage(name);
    while (current) {
      chain.unshift(current);
      const base: string = current.base;
      current = this.stages.find((candidate) => candidate.name === base);
    }
    return chain;
  }

  image(target: string): ImageConfig {
    const chain = this.chain(target);
    const config: ImageConfig = {
      target,
      baseImage: chain[0]?.base ?? '',
      user: undefined,
      workdir: '/',
      env: {},
      entrypoint: [],
      cmd: [],
      healthcheck: undefined,
      expose: [],
      copies: [],
    };
    for (const stage of chain) {
      for (const instruction of stage.instructions) applyInstruction(config, instruction);
    }
    return config;
  }
}

function applyInstruction(config: ImageConfig, instruction: Instruction): void {
  const keyword = instruction.getKeyword();
  const args = instruction.getArguments().map((argument) => argument.getValue());
  const line = instruction.getRange().start.line + 1;
  switch (keyword) {
    case 'USER':
      config.user = args[0];
      break;
    case 'WORKDIR':
      config.workdir = posix.resolve(config.workdir, expand(args[0] ?? '', config.env));
      break;
    case 'ENV':
      for (const [name, value] of envProperties(instruction)) config.env[name] = expand(value, config.env);
      break;
    case 'CMD':
      config.cmd = execForm(instruction);
      break;
    case 'ENTRYPOINT':
      config.entrypoint = execForm(instruction);
      break;
    case 'HEALTHCHECK': {
      const text = instruction.getArgumentsContent() ?? '';
      const json = /\bCMD\s+(\[.*\])\s*$/s.exec(text);
      config.healthcheck = json?.[1] ? (JSON.parse(json[1]) as string[]) : undefined;
      break;
    }
    case 'EXPOSE':
      config.expose.push(...args.map((port) => Number.parseInt(port, 10)));
      break;
    case 'COPY': {
      // Flags (--from, --chown) are not among the parser's arguments.
      const from = (instruction as Copy).getFromFlag()?.getValue() ?? undefined;
      const paths = args;
      const destination = paths.at(-1) ?? '';
      config.copies.push({
        from,
        sources: paths.slice(0, -1),
        destination: posix.resolve(config.workdir, destination) + (destination.endsWith('/') ? '/' : ''),
        line,
      });
      break;
    }
    default:
      break;
  }
}

/** ENV's name=value pairs (the parser keeps quoting and line continuations apart). */
function envProperties(instruction: Instruction): Array<[string, string]> {
  const properties = (
    instruction as unknown as { getProperties(): Array<{ getName(): string; getValue(): string | null }> }
  ).getProperties();
  return properties.map((property) => [property.getName(), property.getValue() ?? '']);
}

/** CMD, ENTRYPOINT in exec (JSON) form; the shell form is refused: it would run through /bin/sh. */
function execForm(instruction: Instruction): string[] {
  const text = instruction.getArgumentsContent() ?? '';
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) {
    throw new Error(`${instruction.getKeyword()} must be in exec form: ${text}`);
  }
  return parsed;
}

/** `${NAME}` and `$NAME` as a Dockerfile expands them (no modifiers are used here). */
export function expand(text: string, variables: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, braced, bare) => {
    const name = String(braced ?? bare);
    return variables[name] ?? '';
  });
}
