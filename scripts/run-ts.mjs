#!/usr/bin/env node
// Runs a TypeScript entry point (a bench or tool script) by bundling it with esbuild into
// tmp/run/, resolving the libs/ path aliases, then executing it with the given arguments.
import { spawn } from 'node:child_process';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle } from './build-app.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  process.stderr.write('usage: run-ts.mjs <file.ts> [args...]\n');
  process.exit(2);
}
const outfile = join(root, 'tmp', 'run', basename(entry).replace(/\.ts$/, '.mjs'));
await bundle(resolve(entry), outfile);
const child = spawn(process.execPath, ['--enable-source-maps', outfile, ...args], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
