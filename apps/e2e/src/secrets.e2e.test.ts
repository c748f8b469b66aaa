import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createQueueRedis, FetchQueue } from '@modproxy/queue';
import { GrpcStorage } from '@modproxy/storage-grpc';
import {
  appNodeArgs,
  type AppProcess,
  buildZip,
  createTempDir,
  HOSTILE_BEHAVIOURS,
  HostileUpstream,
  getFreePort,
  type RedisServer,
  removeDir,
  runCommand,
  startAppProcess,
  startRedisServer,
} from '@modproxy/testing';
import { GrpcVersions } from '@modproxy/versions-grpc';
import { createPostgresRole } from '@modproxy/storage-mongo/testing';
import { type EchoingUpstream, startEchoingUpstream, UPSTREAM_BEHAVIOURS } from './echoing-upstream';

const root = join(__dirname, '..', '..', '..');
const main = (app: string) => join(root, 'dist', 'apps', app, 'main.js');

/** Distinctive, so that finding one anywhere can only mean it leaked. */
const mark = (label: string) => `${label}${randomBytes(6).toString('hex')}`;

interface Credentials {
  user: string;
  password: string;
}

/** `user:password@` as written in a URL (percent-encoded). */
const userinfo = ({ user, password }: Credentials) =>
  `${encodeURIComponent(user)}:${encodeURIComponent(password)}@`;

/** The credentials of an `Authorization: Basic` header. */
const basic = ({ user, password }: Credentials) => Buffer.from(`${user}:${password}`).toString('base64');

/** Every form in which these credentials could leak. */
const credentialForms = (credentials: Credentials) => [
  credentials.user,
  credentials.password,
  encodeURIComponent(credentials.password),
  basic(credentials),
  encodeURIComponent(basic(credentials)),
];

/**
 * Credentials whose Basic form has `+`, `/` or `=`, so that it changes when an upstream
 * percent-encodes it into a URL.
 */
function awkwardCredentials(): Credentials {
  for (;;) {
    const credentials = { user: mark('alice'), password: `${mark('s3cret')}/:@x` };
    if (/[+/=]/.test(basic(credentials))) return credentials;
  }
}

/** What a process printed or a client was told. */
interface Seen {
  where: string;
  text: string;
}

/** One HTTP request whose whole answer (status, headers, body) is kept. */
async function request(
  base: string,
  path: string,
  method = 'GET',
  sent: Record<string, string> = {},
): Promise<Seen & { status: number }> {
  const response = await fetch(`${base}${path}`, { method, redirect: 'manual', headers: sent });
  const headers = [...response.headers].map(([name, value]) => `${name}: ${value}`).join('\n');
  const body = method === 'HEAD' ? '' : await response.text();
  return {
    where: `${method} ${base}${path}`,
    status: response.status,
    text: `${response.status}\n${headers}\n\n${body}`,
  };
}

/** Runs `items` through `work`, `limit` at a time. */
async function pool<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const runners = Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  });
  await Promise.all(runners);
  return results;
}

const HOSTILE_MODULE = 'example.com/hostile';

/** A GOPROXY tree for the hostile upstream: one version per behaviour. */
async function hostileTree(dir: string): Promise<string> {
  const versions = HOSTILE_BEHAVIOURS.map((_, index) => `v1.0.${index}`);
  const at = join(dir, HOSTILE_MODULE, '@v');
  await mkdir(at, { recursive: true });
  const mod = `module ${HOSTILE_MODULE}\n`;
  const info = (version: string) => JSON.stringify({ Version: version, Time: '2024-01-01T00:00:00Z' });
  await writeFile(join(at, 'list'), versions.map((version) => `${version}\n`).join(''));
  await writeFile(join(dir, HOSTILE_MODULE, '@latest'), info(versions.at(-1) ?? ''));
  for (const version of versions) {
    await writeFile(join(at, `${version}.info`), info(version));
    await writeFile(join(at, `${version}.mod`), mod);
    await writeFile(
      join(at, `${version}.zip`),
      await buildZip([{ name: `${HOSTILE_MODULE}@${version}/go.mod`, data: mod }]),
    );
  }
  return dir;
}

/** Requests that fail in every way: bad paths, bad methods, unknown modules, each failing upstream. */
function failingPaths(): Array<{ path: string; method?: string }> {
  const paths: Array<{ path: string; method?: string }> = [
    '/',
    '/nope',
    '/healthz',
    '/readyz',
    '/metrics',
    '/example.com/x/@v/',
    '/example.com/x/@v/not-a-version.info',
    '/Example.com/x/@v/list',
    '/example.com/%2Fx/@v/list',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/example.com/x/@v/v1.0.0.zip%00',
    '/example.com/unknown/@v/list',
    '/example.com/unknown/@v/v1.0.0.info',
  ].map((path) => ({ path }));
  paths.push({ path: '/example.com/notfound/@v/list', method: 'POST' });
  for (const behaviour of UPSTREAM_BEHAVIOURS) {
    for (const suffix of [
      '@v/list',
      '@latest',
      '@v/v1.0.0.info',
      '@v/v1.0.0.mod',
      '@v/v1.0.0.zip',
      '@v/master.info',
    ]) {
      paths.push({ path: `/example.com/${behaviour}/${suffix}` });
    }
  }
  return paths;
}

describe('no secret in any log line, configuration error or response body', () => {
  const secrets = {
    // The upstream proxy reached with credentials in its URL, and a second one on a closed port.
    upstream: awkwardCredentials(),
    closedUpstream: { user: mark('bob'), password: mark('hunter2') },
    hostileUpstream: { user: mark('hostileuser'), password: mark('hostilepw') },
    authorization: mark('authzbearer'),
    storageToken: mark('storagetoken'),
    lathensToken: mark('lathenstoken'),
    redis: { user: 'default', password: mark('redispass') },
    queueRedis: { user: mark('queueuser'), password: mark('queuepass') },
    mongo: { user: mark('mongouser'), password: mark('mongopass') },
    // crathens' admin port (Bull Board): HTTP Basic and a bearer token.
    adminPassword: mark('adminpass'),
    adminToken: mark('admintoken'),
    // Configured but wrong: they must not leak either.
    wrongStorageToken: mark('wrongstoragetoken'),
    wrongLathensToken: mark('wronglathenstoken'),
    wrongRedisPassword: mark('wrongredispass'),
  };
  const slashMark = mark('slash');
  /** Values only the configurations that fail to start carry. */
  const badValues = {
    upstream: { user: mark('carl'), password: mark('badupstreampw') },
    fileUpstream: { user: mark('fileuser'), password: mark('filepw') },
    redis: { user: mark('redisbad'), password: mark('redisbadpw') },
    queueRedis: { user: mark('queuebad'), password: mark('queuebadpw') },
    mongoScheme: { user: mark('mongobad'), password: mark('mongobadpw') },
    mongoClosed: { user: mark('mongoclosed'), password: mark('mongoclosedpw') },
    // The MongoDB driver rejects a `/` in a user name, and says which user name.
    mongoSlash: { user: `dave/${slashMark}`, password: mark('slashpw') },
    shortToken: mark('tok'),
    // Shorter than ADMIN_PASSWORD's 12 characters, and still one of a kind.
    shortAdminPassword: mark('p').slice(0, 11),
    crathensQueueRedis: { user: mark('crathensbad'), password: mark('crathensbadpw') },
    authorization: mark('badauthz'),
    fileToken: mark('filetoken'),
  };
  const forbidden = [
    ...credentialForms(secrets.upstream),
    ...credentialForms(secrets.closedUpstream),
    ...credentialForms(secrets.hostileUpstream),
    secrets.authorization,
    encodeURIComponent(`Bearer ${secrets.authorization}`),
    secrets.storageToken,
    secrets.lathensToken,
    secrets.redis.password,
    ...credentialForms(secrets.queueRedis),
    ...credentialForms(secrets.mongo),
    secrets.wrongStorageToken,
    secrets.wrongLathensToken,
    secrets.wrongRedisPassword,
    secrets.adminPassword,
    basic({ user: 'admin', password: secrets.adminPassword }),
    secrets.adminToken,
    ...Object.values(badValues).flatMap((value) =>
      typeof value === 'string' ? [value] : credentialForms(value),
    ),
    slashMark,
  ];

  const seen: Seen[] = [];
  const processes: Array<{ name: string; process: AppProcess }> = [];
  const failedStarts: Array<{
    name: string;
    variable: RegExp;
    exitCode: number | null;
    expectedCode: number;
  }> = [];
  let upstream: EchoingUpstream;
  let hostile: HostileUpstream | undefined;
  let redis: RedisServer;
  let dir: string;
  let upstreamList: string;
  let closedPort: number;
  let answers: Array<Seen & { status: number }> = [];
  /** Bull Board's API answer for the fetch jobs waiting for their retry, with the admin token. */
  let crathensDashboard = '';

  beforeAll(async () => {
    dir = await createTempDir('modproxy-secrets-');
    upstream = await startEchoingUpstream();
    closedPort = await getFreePort();
    redis = await startRedisServer({ password: secrets.redis.password });
    const admin = new Redis({ port: redis.port, host: '127.0.0.1', password: secrets.redis.password });
    await admin.call(
      'ACL',
      'SETUSER',
      secrets.queueRedis.user,
      'on',
      `>${secrets.queueRedis.password}`,
      '~*',
      '&*',
      '+@all',
    );
    await admin.quit();

    const redisAt = (credentials: Credentials) =>
      `redis://${credentials.user === 'default' ? `:${encodeURIComponent(credentials.password)}@` : userinfo(credentials)}127.0.0.1:${redis.port}`;
    const upstreamUrl = `http://${userinfo(secrets.upstream)}127.0.0.1:${upstream.port}`;
    // The closed port first: a failure of the second upstream then is the one reported.
    upstreamList = `http://${userinfo(secrets.closedUpstream)}127.0.0.1:${closedPort}|${upstreamUrl}`;
    const mongo = new URL(inject('mongoUri'));
    // FerretDB on PostgreSQL signs a PLAIN user in as that PostgreSQL role (trust: any password).
    await createPostgresRole(inject('postgresUrl'), secrets.mongo.user);
    const mongoUri = `mongodb://${userinfo(secrets.mongo)}${mongo.host}/?directConnection=true&authMechanism=PLAIN`;

    const base = {
      PATH: process.env['PATH'] ?? '',
      HOME: dir,
      LOG_LEVEL: 'debug',
      UPSTREAM_TIMEOUT_MS: '1500',
      FETCH_TIMEOUT_MS: '3000',
    };
    const start = async (name: string, app: string, env: Record<string, string>, ready: RegExp) => {
      const process = await startAppProcess(main(app), { env: { ...base, ...env }, ready });
      processes.push({ name, process });
      return process;
    };

    const storage = await start(
      'storage (MongoDB)',
      'storage',
      {
        STORAGE_BACKEND: 'mongo',
        MONGODB_URI: mongoUri,
        MONGODB_DATABASE: `secrets_${randomBytes(4).toString('hex')}`,
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        STORAGE_TOKEN: secrets.storageToken,
      },
      /grpc 127\.0\.0\.1:(\d+) http (\d+)/,
    );
    const storageGrpc = `127.0.0.1:${storage.match[1] ?? ''}`;
    const storageHttp = `http://127.0.0.1:${storage.match[2] ?? ''}`;
    const lathens = await start(
      'lathens',
      'lathens',
      {
        REDIS_URL: redisAt(secrets.redis),
        QUEUE_REDIS_URL: redisAt(secrets.queueRedis),
        GRPC_TOKEN: secrets.lathensToken,
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        STORAGE_TYPE: 'grpc',
        STORAGE_GRPC_URL: storageGrpc,
        STORAGE_TOKEN: secrets.storageToken,
        UPSTREAM: upstreamList,
        UPSTREAM_AUTHORIZATION: `Bearer ${secrets.authorization}`,
        FAILURE_TTL_MS: '1',
      },
      /lathens listening: grpc (\S+) http (\S+)/,
    );
    const lathensGrpc = lathens.match[1] ?? '';
    const proxyReady = /export GOPROXY=(\S+)/;
    const production = await start(
      'proxy (storage service, lathens)',
      'proxy',
      {
        PORT: '0',
        STORAGE_TYPE: 'grpc',
        STORAGE_GRPC_URL: storageGrpc,
        STORAGE_TOKEN: secrets.storageToken,
        LATHENS_GRPC_URL: lathensGrpc,
        LATHENS_GRPC_TOKEN: secrets.lathensToken,
        UPSTREAM: upstreamUrl,
        UPSTREAM_AUTHORIZATION: `Bearer ${secrets.authorization}`,
      },
      proxyReady,
    );
    const embedded = await start(
      'proxy (embedded)',
      'proxy',
      { PORT: '0', STORAGE_TYPE: 'disk', STORAGE_DIR: join(dir, 'storage'), UPSTREAM: upstreamList },
      proxyReady,
    );
    const wrongTokens = await start(
      'proxy (wrong tokens)',
      'proxy',
      {
        PORT: '0',
        STORAGE_TYPE: 'grpc',
        STORAGE_GRPC_URL: storageGrpc,
        STORAGE_TOKEN: secrets.wrongStorageToken,
        LATHENS_GRPC_URL: lathensGrpc,
        LATHENS_GRPC_TOKEN: secrets.wrongLathensToken,
        UPSTREAM: upstreamUrl,
      },
      proxyReady,
    );
    const wrongRedis = await start(
      'lathens (wrong Redis password)',
      'lathens',
      {
        REDIS_URL: redisAt({ user: 'default', password: secrets.wrongRedisPassword }),
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        STORAGE_TYPE: 'none',
        UPSTREAM: upstreamUrl,
      },
      /lathens listening: grpc (\S+) http (\S+)/,
    );

    // crathens with every secret it takes; its fetch jobs fail in every way the upstream can.
    const queuePrefix = `secrets-${randomBytes(4).toString('hex')}`;
    const crathens = await start(
      'crathens',
      'crathens',
      {
        QUEUE_REDIS_URL: redisAt(secrets.queueRedis),
        QUEUE_PREFIX: queuePrefix,
        STORAGE_GRPC_URL: storageGrpc,
        STORAGE_TOKEN: secrets.storageToken,
        LATHENS_GRPC_URL: lathensGrpc,
        LATHENS_GRPC_TOKEN: secrets.lathensToken,
        UPSTREAM: upstreamList,
        UPSTREAM_AUTHORIZATION: `Bearer ${secrets.authorization}`,
        ADMIN_PORT: '0',
        ADMIN_PASSWORD: secrets.adminPassword,
        ADMIN_TOKEN: secrets.adminToken,
        GO_WORK_DIR: join(dir, 'crathens-work'),
      },
      /crathens running: admin (\S+)/,
    );
    const crathensAdmin = crathens.match[1] ?? '';
    const queueConnection = createQueueRedis(redisAt(secrets.queueRedis));
    const fetchQueue = new FetchQueue({ connection: queueConnection, prefix: queuePrefix });
    try {
      const jobs = UPSTREAM_BEHAVIOURS.map((behaviour) => `example.com/${behaviour}`);
      await Promise.all(
        jobs.map(async (module) => {
          try {
            const done = await fetchQueue.fetchAndWait(module, 'v1.0.0', { timeoutMs: 20_000 });
            seen.push({ where: `fetch job ${module}`, text: JSON.stringify(done) });
          } catch (error) {
            const failure = error as Error & { detail?: string };
            seen.push({ where: `fetch job ${module}`, text: `${String(error)} ${failure.detail ?? ''}` });
          }
          // What the queue keeps of the job: data, failed reason, stack traces.
          const job = await fetchQueue.queue.getJob(`${module}@v1.0.0`);
          seen.push({ where: `fetch job ${module} in Redis`, text: JSON.stringify(job?.asJSON() ?? null) });
        }),
      );
    } finally {
      await fetchQueue.close();
      queueConnection.disconnect();
    }
    const bearer = { authorization: `Bearer ${secrets.adminToken}` };
    const adminAnswers = await Promise.all([
      ...['/healthz', '/readyz', '/metrics', '/admin/queues', '/nope'].map((path) =>
        request(crathensAdmin, path),
      ),
      request(crathensAdmin, '/admin/queues', 'GET', {
        authorization: `Basic ${basic({ user: 'admin', password: secrets.wrongStorageToken })}`,
      }),
      request(crathensAdmin, '/admin/queues', 'GET', {
        authorization: `Basic ${basic({ user: 'admin', password: secrets.adminPassword })}`,
      }),
      request(
        crathensAdmin,
        '/admin/queues/api/queues?activeQueue=fetch&status=delayed&page=1',
        'GET',
        bearer,
      ),
      request(
        crathensAdmin,
        '/admin/queues/api/queues?activeQueue=fetch&status=latest&page=1',
        'GET',
        bearer,
      ),
    ]);
    seen.push(...adminAnswers);
    crathensDashboard = adminAnswers.at(-2)?.text ?? '';

    // Every HTTP server, every way of failing.
    const bases = [
      production.match[1] ?? '',
      embedded.match[1] ?? '',
      wrongTokens.match[1] ?? '',
      lathens.match[2] ?? '',
      wrongRedis.match[2] ?? '',
      storageHttp,
    ];
    const requests = bases.flatMap((base) => failingPaths().map((item) => ({ base, ...item })));
    answers = await pool(requests, 12, (item) => request(item.base, item.path, item.method));
    seen.push(...answers);

    // The hostile upstream of libs/testing, one behaviour after the other, each on versions of
    // its own so that nothing is answered from storage or the cache.
    hostile = await HostileUpstream.start({
      dir: await hostileTree(join(dir, 'hostile')),
      oversizedBytes: 1 << 20,
    });
    const viaHostile = await start(
      'proxy (hostile upstream)',
      'proxy',
      {
        PORT: '0',
        STORAGE_TYPE: 'memory',
        UPSTREAM: `http://${userinfo(secrets.hostileUpstream)}127.0.0.1:${new URL(hostile.url).port}`,
        VERSIONS_SOFT_TTL_MS: '1',
        VERSIONS_HARD_TTL_MS: '1',
        VERSIONS_NEGATIVE_TTL_MS: '1',
      },
      proxyReady,
    );
    const hostileBase = viaHostile.match[1] ?? '';
    for (const [index, behaviour] of HOSTILE_BEHAVIOURS.entries()) {
      hostile.setBehaviour(behaviour);
      const version = `v1.0.${index}`;
      const paths = ['@v/list', '@latest', `@v/${version}.info`, `@v/${version}.mod`, `@v/${version}.zip`];
      const told = await Promise.all(paths.map((path) => request(hostileBase, `/${HOSTILE_MODULE}/${path}`)));
      answers.push(...told);
      seen.push(...told);
    }

    // gRPC: wrong and missing tokens, and upstream failures reported through lathens.
    const grpcCalls: Array<[string, () => Promise<unknown>]> = [];
    for (const [label, token] of [
      ['wrong token', secrets.wrongStorageToken],
      ['no token', undefined],
      ['right token', secrets.storageToken],
    ] as const) {
      const client = new GrpcStorage({ url: storageGrpc, ...(token ? { token } : {}), deadlineMs: 5_000 });
      grpcCalls.push([`storage ${label} info`, () => client.info('example.com/notfound', 'v1.0.0')]);
      grpcCalls.push([`storage ${label} catalog`, () => client.catalog({ pageSize: 10 })]);
      grpcCalls.push([`storage ${label} close`, () => client.close()]);
    }
    for (const [label, token] of [
      ['wrong token', secrets.wrongLathensToken],
      ['right token', secrets.lathensToken],
    ] as const) {
      const client = new GrpcVersions({ url: lathensGrpc, token, deadlineMs: 10_000 });
      for (const behaviour of [...UPSTREAM_BEHAVIOURS, 'unknown']) {
        grpcCalls.push([`lathens ${label} list ${behaviour}`, () => client.list(`example.com/${behaviour}`)]);
        grpcCalls.push([
          `lathens ${label} latest ${behaviour}`,
          () => client.latest(`example.com/${behaviour}`),
        ]);
      }
      grpcCalls.push([`lathens ${label} close`, () => client.close()]);
    }
    for (const [where, call] of grpcCalls) {
      try {
        seen.push({ where: `gRPC ${where}`, text: JSON.stringify(await call()) ?? '' });
      } catch (error) {
        seen.push({ where: `gRPC ${where}`, text: `${String(error)} ${(error as Error).stack ?? ''}` });
      }
    }

    // Configurations that must stop start-up, each carrying a secret.
    const malformedFile = join(dir, 'malformed.json');
    await writeFile(malformedFile, `{"STORAGE_TOKEN": "${badValues.fileToken}" "PORT": 1}`);
    const badUpstreamFile = join(dir, 'bad-upstream.json');
    await writeFile(
      badUpstreamFile,
      JSON.stringify({ UPSTREAM: `ftp://${userinfo(badValues.fileUpstream)}h.example` }),
    );
    const closedMongoPort = await getFreePort();
    const failing: Array<{
      name: string;
      app: string;
      env: Record<string, string>;
      variable: RegExp;
      code?: number;
    }> = [
      {
        name: 'proxy UPSTREAM',
        app: 'proxy',
        env: { UPSTREAM: `http://${userinfo(badValues.upstream)}bad host` },
        variable: /UPSTREAM/,
      },
      {
        name: 'proxy STORAGE_TOKEN',
        app: 'proxy',
        env: { STORAGE_TOKEN: badValues.shortToken },
        variable: /STORAGE_TOKEN/,
      },
      {
        name: 'proxy LATHENS_GRPC_TOKEN',
        app: 'proxy',
        env: { LATHENS_GRPC_TOKEN: badValues.shortToken },
        variable: /LATHENS_GRPC_TOKEN/,
      },
      {
        name: 'proxy UPSTREAM_AUTHORIZATION beside a bad PORT',
        app: 'proxy',
        env: { UPSTREAM_AUTHORIZATION: `Bearer ${badValues.authorization}`, PORT: 'eighty' },
        variable: /PORT/,
      },
      {
        name: 'proxy malformed CONFIG_FILE',
        app: 'proxy',
        env: { CONFIG_FILE: malformedFile },
        variable: /CONFIG_FILE/,
      },
      {
        name: 'proxy UPSTREAM from CONFIG_FILE',
        app: 'proxy',
        env: { CONFIG_FILE: badUpstreamFile },
        variable: /UPSTREAM/,
      },
      {
        name: 'lathens UPSTREAM',
        app: 'lathens',
        env: { UPSTREAM: `http://${userinfo(badValues.upstream)}bad host` },
        variable: /UPSTREAM/,
      },
      {
        name: 'lathens REDIS_URL',
        app: 'lathens',
        env: { REDIS_URL: `http://${userinfo(badValues.redis)}127.0.0.1:${closedPort}` },
        variable: /REDIS_URL/,
      },
      {
        name: 'lathens QUEUE_REDIS_URL',
        app: 'lathens',
        env: { QUEUE_REDIS_URL: `mongodb://${userinfo(badValues.queueRedis)}127.0.0.1:${closedPort}` },
        variable: /QUEUE_REDIS_URL/,
      },
      {
        name: 'lathens GRPC_TOKEN',
        app: 'lathens',
        env: { GRPC_TOKEN: badValues.shortToken },
        variable: /GRPC_TOKEN/,
      },
      {
        name: 'lathens STORAGE_TOKEN',
        app: 'lathens',
        env: { STORAGE_TOKEN: badValues.shortToken },
        variable: /STORAGE_TOKEN/,
      },
      {
        name: 'crathens QUEUE_REDIS_URL',
        app: 'crathens',
        env: {
          QUEUE_REDIS_URL: `http://${userinfo(badValues.crathensQueueRedis)}127.0.0.1:${closedPort}`,
          STORAGE_GRPC_URL: `127.0.0.1:${closedPort}`,
        },
        variable: /QUEUE_REDIS_URL/,
      },
      {
        name: 'crathens ADMIN_PASSWORD',
        app: 'crathens',
        env: {
          STORAGE_GRPC_URL: `127.0.0.1:${closedPort}`,
          ADMIN_PASSWORD: badValues.shortAdminPassword,
          ADMIN_TOKEN: secrets.adminToken,
        },
        variable: /ADMIN_PASSWORD/,
      },
      {
        name: 'storage MONGODB_URI scheme',
        app: 'storage',
        env: {
          STORAGE_BACKEND: 'mongo',
          MONGODB_URI: `mongo://${userinfo(badValues.mongoScheme)}127.0.0.1:${closedPort}`,
        },
        variable: /MONGODB_URI/,
      },
      {
        name: 'storage STORAGE_TOKEN',
        app: 'storage',
        env: { STORAGE_TOKEN: badValues.shortToken },
        variable: /STORAGE_TOKEN/,
      },
      {
        name: 'storage MONGODB_URI the driver rejects',
        app: 'storage',
        env: {
          STORAGE_BACKEND: 'mongo',
          // Written as is: the driver's parser, not a URL parser, reads the user name (and
          // quotes it); configuration refuses it first, naming the variable.
          MONGODB_URI: `mongodb://${badValues.mongoSlash.user}:${badValues.mongoSlash.password}@127.0.0.1:${closedPort}/`,
          GRPC_PORT: '0',
          HTTP_PORT: '0',
        },
        variable: /MONGODB_URI/,
      },
      {
        name: 'storage MONGODB_URI unreachable',
        app: 'storage',
        env: {
          STORAGE_BACKEND: 'mongo',
          MONGODB_URI: `mongodb://${userinfo(badValues.mongoClosed)}127.0.0.1:${closedMongoPort}/?directConnection=true&authMechanism=PLAIN`,
          GRPC_PORT: '0',
          HTTP_PORT: '0',
        },
        variable: /MongoDB/,
        code: 1,
      },
    ];
    await pool(failing, 4, async (run) => {
      // As every app starts: with its tracing entry (it reads the OTEL variables and logs too).
      const result = await runCommand(process.execPath, appNodeArgs(main(run.app)), {
        env: { ...base, PORT: '0', ...run.env },
        cwd: dir,
        signal: AbortSignal.timeout(60_000),
      });
      seen.push(
        { where: `${run.name}: stdout`, text: result.stdout },
        { where: `${run.name}: stderr`, text: result.stderr },
      );
      failedStarts.push({
        name: run.name,
        variable: run.variable,
        exitCode: result.exitCode,
        expectedCode: run.code ?? 2,
      });
    });
    // Eight processes and every way of failing on a busy machine: a deadline, not a measurement.
  }, 300_000);

  afterAll(async () => {
    for (const { process } of [...processes].reverse()) await process.stop();
    await upstream?.close();
    await hostile?.close();
    await redis?.stop();
    if (dir) await removeDir(dir);
  });

  /** Every occurrence of a forbidden value, with some context around it. */
  function leaks(): string[] {
    const found: string[] = [];
    for (const { where, text } of seen) {
      for (const secret of forbidden) {
        const at = text.indexOf(secret);
        if (at >= 0) found.push(`${where}: …${text.slice(Math.max(0, at - 120), at + secret.length + 60)}…`);
      }
    }
    return found;
  }

  it('sends the secrets where they belong: the upstream got both kinds of credentials', () => {
    const sent = new Set(upstream.requests.map((request) => request.authorization));
    expect(sent).toContain(`Basic ${basic(secrets.upstream)}`);
    expect(sent).toContain(`Bearer ${secrets.authorization}`);
    for (const behaviour of UPSTREAM_BEHAVIOURS) {
      expect(upstream.requests.some((request) => request.path.startsWith(`/example.com/${behaviour}/`))).toBe(
        true,
      );
    }
    for (const behaviour of HOSTILE_BEHAVIOURS)
      expect(hostile?.requestsWith(behaviour), behaviour).toBeGreaterThan(0);
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.some((status) => status >= 400 && status < 500)).toBe(true);
    expect(statuses.some((status) => status >= 500)).toBe(true);
  });

  it('ran crathens’ failing fetch jobs and showed them on its dashboard to the admin token only', () => {
    for (const behaviour of UPSTREAM_BEHAVIOURS)
      expect(crathensDashboard, behaviour).toContain(`example.com/${behaviour}@v1.0.0`);
    const fetchJobs = seen.filter(
      ({ where }) => where.startsWith('fetch job') && !where.endsWith('in Redis'),
    );
    expect(fetchJobs).toHaveLength(UPSTREAM_BEHAVIOURS.length);
    expect(fetchJobs.every(({ text }) => text.startsWith('ModuleError'))).toBe(true);
    const dashboard = seen.filter(({ where }) => where.includes('/admin/queues'));
    expect(dashboard.map(({ text }) => Number(text.split('\n')[0]))).toEqual([401, 401, 200, 200, 200]);
  });

  it("tells clients what happened, never the upstream's URL or its page", () => {
    // /metrics names upstream hosts by design (the bounded `host` label of the upstream
    // metrics, for operators; as soon as a call was counted): it is not an answer about a
    // module, and the secret scan below reads it like everything else.
    const told = answers.filter(
      ({ where, text }) =>
        !where.endsWith('/metrics') &&
        (text.includes(`127.0.0.1:${upstream.port}`) ||
          text.includes(new URL(hostile?.url ?? 'http://127.0.0.1:1').host) ||
          /you sent|<!DOCTYPE/i.test(text)),
    );
    expect(told.map(({ where, text }) => `${where}: ${text}`)).toEqual([]);
  });

  it('stops every bad configuration with a message naming what is wrong', () => {
    expect(failedStarts).toHaveLength(17);
    for (const run of failedStarts) {
      const stderr = seen.find((item) => item.where === `${run.name}: stderr`)?.text ?? '';
      expect({ name: run.name, exitCode: run.exitCode }).toEqual({
        name: run.name,
        exitCode: run.expectedCode,
      });
      expect(stderr, run.name).toMatch(run.variable);
    }
  });

  it('logs the upstream with its userinfo replaced', () => {
    const embedded = processes.find((item) => item.name === 'proxy (embedded)')?.process.stdout() ?? '';
    expect(embedded).toContain(
      `"upstream":"http://xxxxx@127.0.0.1:${closedPort}|http://xxxxx@127.0.0.1:${upstream.port}"`,
    );
  });

  it('never shows a user name, password, token or Basic credentials anywhere', async () => {
    // The processes' last words (shutdown) count too.
    for (const { process } of processes) await process.stop();
    for (const { name, process } of processes) {
      seen.push(
        { where: `${name}: stdout`, text: process.stdout() },
        { where: `${name}: stderr`, text: process.stderr() },
      );
    }
    expect(seen.length).toBeGreaterThan(300);
    expect(leaks()).toEqual([]);
  });
});
