import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { configSecrets } from './config-secrets';
import { SecretRedactor } from './secret-redactor';

/** Start-up stops with this error; its message names every variable that is wrong. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface LoadConfigOptions {
  /** Environment to read; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /**
   * Name of the variable that may point at a JSON file of the same keys; default `CONFIG_FILE`.
   * Values from the environment win over the file.
   */
  fileVariable?: string;
}

type Raw = Record<string, unknown>;

function readConfigFile(path: string, variable: string): Raw {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`${variable}: cannot read ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // V8's message quotes the text around the mistake, and that text may be a token.
    const at = /at position \d+/.exec((error as Error).message)?.[0];
    throw new ConfigError(`${variable}: ${path} is not valid JSON${at ? ` (${at})` : ''}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`${variable}: ${path} must hold a JSON object of VARIABLE: value pairs`);
  }
  return parsed as Raw;
}

/**
 * Validates configuration once, at start-up. Schema keys are the variable names themselves,
 * so every error message names the variable an operator has to fix.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, options: LoadConfigOptions = {}): z.infer<S> {
  const env = options.env ?? process.env;
  const fileVariable = options.fileVariable ?? 'CONFIG_FILE';
  const file = env[fileVariable];
  const fromFile = file ? readConfigFile(file, fileVariable) : {};
  const known = Object.keys(schema.shape);
  const unknownInFile = Object.keys(fromFile).filter((key) => !known.includes(key));
  if (unknownInFile.length > 0) {
    throw new ConfigError(`${fileVariable}: unknown variable(s) in ${file}: ${unknownInFile.join(', ')}`);
  }
  const raw: Raw = { ...fromFile };
  for (const key of known) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    // Neither the values echoed nor the messages (a URL quoted by a validator) may show a
    // secret, of this variable or of any other.
    const redactor = new SecretRedactor(configSecrets(raw));
    const lines = result.error.issues.map((issue) => {
      const variable = issue.path.join('.') || '(configuration)';
      const got = issue.path.length > 0 ? raw[String(issue.path[0])] : undefined;
      const shown =
        got === undefined ? '' : ` (got ${JSON.stringify(neverEchoed(variable) ? '<redacted>' : got)})`;
      return redactor.redact(`  ${variable}: ${issue.message}${shown}`);
    });
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

/** Variables whose value is not even partly shown in an error: secrets, and keys and URIs that may hold one. */
function neverEchoed(variable: string): boolean {
  return /TOKEN|PASSWORD|SECRET|KEY|CREDENTIAL|AUTHORIZATION|URI/i.test(variable);
}
