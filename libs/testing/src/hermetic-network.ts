import dns from 'node:dns';
import { appendFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';

/** A name lookup or a connection that a hermetic test must not make, and where it was asked for. */
export interface HermeticViolation {
  what: string;
  stack: string;
}

interface HermeticState {
  installed: boolean;
  violations: HermeticViolation[];
  /** Where a child process appends its violations for the test process to read. */
  reportFile?: string;
}

// On globalThis: vitest evaluates the setup file once per test file, but the built-in modules it
// patches live once per worker process; one patch and one list of violations per process.
const STATE_KEY = Symbol.for('modproxy.testing.hermetic-network');
const globalState = globalThis as unknown as Record<symbol, HermeticState | undefined>;
const state: HermeticState = (globalState[STATE_KEY] ??= { installed: false, violations: [] });

/** Whether a host is this machine: a loopback or unspecified address, or `localhost` (the hosts file). */
export function isLoopbackHost(host: string): boolean {
  const name = host
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  const version = net.isIP(name);
  if (version === 4) return name.startsWith('127.') || name === '0.0.0.0';
  if (version === 6) {
    if (name === '::1' || name === '::') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(name);
    return mapped !== null && isLoopbackHost(mapped[1] ?? '');
  }
  return false;
}

/**
 * Violations recorded since the last call, which are then forgotten; the test setup fails the
 * test that made them.
 */
export function takeHermeticViolations(): HermeticViolation[] {
  return state.violations.splice(0);
}

function refuse(what: string, hostname: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException & { hostname?: string } = new Error(
    `hermetic test: refused ${what} (tests stay on loopback; for "unreachable" use 127.0.0.1 and a closed port)`,
  );
  // ENOTFOUND, so the code under test takes the path of a name that does not resolve.
  error.code = 'ENOTFOUND';
  error.hostname = hostname;
  // Where the test asked for it: the frames of this guard say nothing.
  const frames = (new Error(what).stack ?? '').split('\n').slice(1);
  const stack = frames.filter((frame) => !/hermetic-(network|preload)/.test(frame)).join('\n');
  state.violations.push({ what, stack });
  if (state.reportFile) {
    try {
      appendFileSync(
        state.reportFile,
        `${JSON.stringify({ what, stack: `pid ${process.pid}\n${stack}` })}\n`,
      );
    } catch {
      // The test process reads the file; if it cannot be written, the error still fails the call.
    }
  }
  return error;
}

type Callback = (...args: unknown[]) => void;

/** The callback of a callback-style dns call: its last function argument. */
function callbackOf(args: unknown[]): Callback | undefined {
  const last = args.at(-1);
  return typeof last === 'function' ? (last as Callback) : undefined;
}

const RESOLVER_METHODS = [
  'resolve',
  'resolve4',
  'resolve6',
  'resolveAny',
  'resolveCaa',
  'resolveCname',
  'resolveMx',
  'resolveNaptr',
  'resolveNs',
  'resolvePtr',
  'resolveSoa',
  'resolveSrv',
  'resolveTxt',
  'reverse',
] as const;

type Patchable = Record<string, unknown>;

/** The resolve* family always asks the configured DNS servers, even for `localhost`: always refused. */
function patchResolvers(target: Patchable, promises: boolean): void {
  for (const method of RESOLVER_METHODS) {
    if (typeof target[method] !== 'function') continue;
    target[method] = function refusedResolve(name: unknown, ...rest: unknown[]) {
      const error = refuse(`DNS query ${method}(${JSON.stringify(name)})`, String(name));
      if (promises) return Promise.reject(error);
      const callback = callbackOf(rest);
      if (callback) process.nextTick(callback, error);
      return undefined;
    };
  }
}

function patchDns(): void {
  const callbackDns = dns as unknown as Patchable;
  const promiseDns = dns.promises as unknown as Patchable;

  const lookup = dns.lookup.bind(dns) as unknown as (...args: unknown[]) => unknown;
  callbackDns['lookup'] = function guardedLookup(hostname: unknown, ...rest: unknown[]) {
    const host = String(hostname);
    if (net.isIP(host) !== 0 || isLoopbackHost(host)) return lookup(hostname, ...rest);
    const error = refuse(`name lookup of ${JSON.stringify(host)}`, host);
    const callback = callbackOf(rest);
    if (callback) process.nextTick(callback, error);
    return undefined;
  };
  const promiseLookup = dns.promises.lookup.bind(dns.promises) as unknown as (...args: unknown[]) => unknown;
  promiseDns['lookup'] = function guardedPromiseLookup(hostname: unknown, ...rest: unknown[]) {
    const host = String(hostname);
    if (net.isIP(host) !== 0 || isLoopbackHost(host)) return promiseLookup(hostname, ...rest);
    return Promise.reject(refuse(`name lookup of ${JSON.stringify(host)}`, host));
  };

  const lookupService = dns.lookupService.bind(dns) as unknown as (...args: unknown[]) => unknown;
  callbackDns['lookupService'] = function guardedLookupService(address: unknown, ...rest: unknown[]) {
    if (isLoopbackHost(String(address))) return lookupService(address, ...rest);
    const callback = callbackOf(rest);
    const error = refuse(`reverse lookup of ${JSON.stringify(address)}`, String(address));
    if (callback) process.nextTick(callback, error);
    return undefined;
  };
  const promiseLookupService = dns.promises.lookupService.bind(dns.promises) as unknown as (
    ...args: unknown[]
  ) => unknown;
  promiseDns['lookupService'] = function guardedPromiseLookupService(address: unknown, ...rest: unknown[]) {
    if (isLoopbackHost(String(address))) return promiseLookupService(address, ...rest);
    return Promise.reject(refuse(`reverse lookup of ${JSON.stringify(address)}`, String(address)));
  };

  patchResolvers(callbackDns, false);
  patchResolvers(promiseDns, true);
  patchResolvers(dns.Resolver.prototype as unknown as Patchable, false);
  patchResolvers(dns.promises.Resolver.prototype as unknown as Patchable, true);
}

/** The destination host of `socket.connect(...)` arguments; undefined for a Unix socket or pipe. */
function connectHost(args: unknown[]): string | undefined {
  // net.connect() passes its normalized arguments as one array: [options, callback].
  const first: unknown = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (typeof first === 'object' && first !== null) {
    const options = first as { path?: unknown; host?: unknown };
    if (options.path !== undefined) return undefined;
    return typeof options.host === 'string' ? options.host : 'localhost';
  }
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    return typeof args[1] === 'string' ? args[1] : 'localhost';
  }
  return undefined;
}

function patchConnect(): void {
  const connect = net.Socket.prototype.connect as unknown as (
    this: net.Socket,
    ...args: unknown[]
  ) => net.Socket;
  (net.Socket.prototype as unknown as Patchable)['connect'] = function guardedConnect(
    this: net.Socket,
    ...args: unknown[]
  ): net.Socket {
    const host = connectHost(args);
    // Names go through dns.lookup (guarded above); an address that is not this machine stops here.
    if (host === undefined || net.isIP(host) === 0 || isLoopbackHost(host)) return connect.apply(this, args);
    const error = refuse(`connection to ${host}`, host);
    process.nextTick(() => this.destroy(error));
    return this;
  };
}

/**
 * Makes this process refuse, and record (also appended to `reportFile`, for a child process),
 * every DNS query and every lookup of a name that is not
 * this machine, and every TCP connection to an address that is not loopback. The refused call
 * fails as an unresolvable name would (`ENOTFOUND`), so the code under test goes on; the test
 * setup then fails the test with what was refused and where. Idempotent.
 */
export function installHermeticNetwork(options: { reportFile?: string } = {}): void {
  if (options.reportFile) state.reportFile = options.reportFile;
  if (state.installed) return;
  state.installed = true;
  patchDns();
  patchConnect();
  // `import { lookup } from 'node:dns'` binds the export, not the property: resync those bindings.
  syncBuiltinESMExports();
}
