#!/usr/bin/env node
// Bundles one app (apps/<name>/src/main.ts) into dist/apps/<name>/main.js. Libraries from
// libs/ are bundled (tsconfig path aliases resolved); npm packages stay external, as
// OpenTelemetry instrumentation needs them unbundled.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Bundles one TypeScript entry point into an ES module; npm packages stay external. */
export async function bundle(entry, outfile) {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    packages: 'external',
    sourcemap: true,
    tsconfig: join(root, 'tsconfig.base.json'),
    logLevel: 'warning',
  });
  return outfile;
}

export function buildApp(name) {
  return bundle(join(root, 'apps', name, 'src', 'main.ts'), join(root, 'dist', 'apps', name, 'main.js'));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const name = process.argv[2];
  if (!name) {
    process.stderr.write('usage: build-app.mjs <app name>\n');
    process.exit(2);
  }
  const outfile = await buildApp(name);
  process.stdout.write(`built ${outfile}\n`);
}
