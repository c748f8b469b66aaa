#!/usr/bin/env node
// Bundles one app (apps/<name>/src/main.ts) into dist/apps/<name>/main.js, and its tracing
// entry (apps/<name>/src/instrument.ts) into instrument.js beside it; run the app with
// `node --import ./dist/apps/<name>/instrument.js dist/apps/<name>/main.js`. Libraries from
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

/**
 * Bundles an app's main.js and instrument.js into `outDir`; resolves with the main.js path
 * (instrument.js is beside it).
 */
export async function bundleAppTo(name, outDir) {
  const src = join(root, 'apps', name, 'src');
  await bundle(join(src, 'instrument.ts'), join(outDir, 'instrument.js'));
  return bundle(join(src, 'main.ts'), join(outDir, 'main.js'));
}

export function buildApp(name) {
  return bundleAppTo(name, join(root, 'dist', 'apps', name));
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
