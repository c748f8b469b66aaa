#!/usr/bin/env node
// `npm start`: the embedded default. Installs dependencies if this is a fresh clone, bundles
// the proxy, and runs it with disk storage and direct VCS fetches; the proxy prints the
// GOPROXY line to use. Configuration comes from the environment (see README.md).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

if (!existsSync(join(root, 'node_modules', '.package-lock.json'))) {
  process.stdout.write('Installing dependencies (npm ci)…\n');
  const install = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (install.status !== 0) process.exit(install.status ?? 1);
}

const { buildApp } = await import('./build-app.mjs');
const main = await buildApp('proxy');
// The tracing entry first (it hooks the app's imports); with no OTEL_* variable set it exports
// nothing and connects nowhere.
const instrument = pathToFileURL(join(dirname(main), 'instrument.js')).href;
// The embedded default uses every core (WORKERS, see README.md) unless told otherwise, in the
// environment or in CONFIG_FILE.
const env = { ...process.env };
if (env.WORKERS === undefined && !configFileSets('WORKERS')) env.WORKERS = 'auto';
const child = spawn(process.execPath, ['--import', instrument, '--enable-source-maps', main], {
  cwd: root,
  env,
  stdio: 'inherit',
});
function configFileSets(name) {
  if (!process.env.CONFIG_FILE) return false;
  try {
    return Object.hasOwn(JSON.parse(readFileSync(process.env.CONFIG_FILE, 'utf8')), name);
  } catch {
    // The proxy reads it again and says what is wrong with it.
    return false;
  }
}

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
