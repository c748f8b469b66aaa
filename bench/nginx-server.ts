import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

export interface NginxServer {
  url: string;
  pid: number;
  /** The worker processes' pids (they serve; the master only accepts). */
  workerPids(): number[];
  stop(): Promise<void>;
}

const NGINX = '/usr/sbin/nginx';

/**
 * Debian's nginx (nginx-light) when it is missing and this is root with apt; otherwise says how
 * and returns false.
 */
export function ensureDebianPackage(binary: string, pkg: string): boolean {
  if (spawnSync(binary, ['-v']).error === undefined) return true;
  if (process.getuid?.() === 0 && spawnSync('apt-get', ['--version']).error === undefined) {
    process.stderr.write(`installing ${pkg} (apt-get install -y ${pkg})…\n`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
    spawnSync('apt-get', ['install', '-y', '-qq', pkg], { stdio: 'ignore', env });
    if (spawnSync(binary, ['-v']).error === undefined) return true;
  }
  process.stderr.write(`${binary} is missing: install it with \`sudo apt-get install -y ${pkg}\`\n`);
  return false;
}

export function ensureNginx(): boolean {
  return ensureDebianPackage(NGINX, 'nginx-light');
}

/**
 * nginx over `root` (a GOPROXY tree) on 127.0.0.1:`port`, the static ceiling: sendfile, no
 * access log, one worker per core, keep-alive as long as the load lasts.
 */
export async function startNginx(root: string, work: string, port: number): Promise<NginxServer> {
  await mkdir(join(work, 'nginx'), { recursive: true });
  const dir = join(work, 'nginx');
  const conf = join(dir, 'nginx.conf');
  await writeFile(
    conf,
    `worker_processes ${availableParallelism()};
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  client_body_temp_path ${dir};
  proxy_temp_path ${dir};
  fastcgi_temp_path ${dir};
  uwsgi_temp_path ${dir};
  scgi_temp_path ${dir};
  types { application/json info; text/plain mod; application/zip zip; }
  default_type text/plain;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location ~ /@latest$ { default_type application/json; }
  }
}
`,
  );
  const child: ChildProcess = spawn(NGINX, ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${err}`);
    const ok = await fetch(`${url}/`).then(
      () => true,
      () => false,
    );
    if (ok) break;
    if (attempt > 200) throw new Error(`nginx did not listen: ${err}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const pid = child.pid ?? 0;
  return {
    url,
    pid,
    workerPids: () => childPids(pid),
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGQUIT');
      await exited;
    },
  };
}

/** The direct children of `pid` (nginx's workers, a cluster primary's workers). */
export function childPids(pid: number): number[] {
  const out = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).stdout ?? '';
  return out
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((n) => n > 0);
}
