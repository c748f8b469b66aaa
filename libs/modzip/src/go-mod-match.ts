import { errors } from '@modproxy/errors';

/**
 * The go.mod the go command makes up for a version whose zip has none (pre-modules tags,
 * `+incompatible` versions): just the module directive.
 */
export function synthesizedGoMod(module: string): Buffer {
  return Buffer.from(`module ${module}\n`, 'utf8');
}

/**
 * Throws invalid-argument unless `mod`, the `.mod` to be served for `module@version`, is the
 * one the go command would derive from the zip: byte-for-byte its root go.mod, or the
 * synthesized `module <path>\n` when the zip has none. Otherwise go.sum's two lines for the
 * version would describe different modules.
 */
export function verifyGoModMatches(
  zipGoMod: Buffer | undefined,
  mod: Buffer,
  module: string,
  version: string,
): void {
  const expected = zipGoMod ?? synthesizedGoMod(module);
  if (!expected.equals(mod)) {
    const what = zipGoMod
      ? 'the go.mod inside the zip'
      : `the synthesized "module ${module}" (the zip has no go.mod)`;
    throw errors.invalidArgument(
      'modzip.verifyGoModMatches',
      `${module}@${version}: .mod file differs from ${what}`,
      {
        module,
        version,
      },
    );
  }
}
