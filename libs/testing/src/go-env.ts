import { runCommand, type CommandResult } from './run-command';

/**
 * Variables that would make the go command behave differently from what a test asked for;
 * they are dropped from a base environment before the test's own values are applied.
 */
const GO_VARIABLES_NOT_INHERITED = [
  'GOPROXY',
  'GOFLAGS',
  'GONOPROXY',
  'GONOSUMDB',
  'GONOSUMCHECK',
  'GOPRIVATE',
  'GOSUMDB',
  'GOINSECURE',
  'GOVCS',
  'GOPATH',
  'GOMODCACHE',
  'GOCACHE',
  'GOENV',
  'GOWORK',
  'GO111MODULE',
  'GOTOOLCHAIN',
  'GIT_ALLOW_PROTOCOL',
  'GIT_CONFIG_GLOBAL',
  'GIT_CONFIG_SYSTEM',
  'GIT_CONFIG_NOSYSTEM',
  'GIT_DIR',
  'GIT_WORK_TREE',
];

/**
 * Builds an environment for the go command: `base` without the go/git variables that could
 * leak in from the developer's shell, then `extra` on top (an `undefined` value removes a key).
 */
export function goEnv(
  base: Record<string, string | undefined>,
  extra: Record<string, string | undefined> = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) {
    if (value !== undefined && !GO_VARIABLES_NOT_INHERITED.includes(key)) env[key] = value;
  }
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

export interface RunGoOptions {
  cwd?: string;
  /** The complete environment, typically `fixtures.env` (nothing else is inherited). */
  env: Record<string, string>;
  signal?: AbortSignal;
  /** Default `go`, looked up on `env.PATH`. */
  goBinary?: string;
}

/** Runs the go command; resolves with its output and exit code (never rejects on a non-zero exit). */
export async function runGo(args: readonly string[], options: RunGoOptions): Promise<CommandResult> {
  return runCommand(options.goBinary ?? 'go', args, {
    cwd: options.cwd,
    env: options.env,
    signal: options.signal,
  });
}
