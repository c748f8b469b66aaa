import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { credentials, makeGenericClientConstructor } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  type AppProcess,
  createConnectionLog,
  createFixtureModules,
  createTempDir,
  type FixtureModules,
  type OtlpReceiver,
  type ReceivedSpan,
  removeDir,
  startAppProcess,
  startOtlpReceiver,
} from '@modproxy/testing';

const root = join(__dirname, '..', '..', '..');
const main = (app: string) => join(root, 'dist', 'apps', app, 'main.js');

const HealthClient = makeGenericClientConstructor(healthService, 'Health');

/** One grpc.health.v1 Check, as a probe sends it; resolves with the status. */
function grpcHealthCheck(address: string): Promise<string> {
  const client = new HealthClient(address, credentials.createInsecure()) as unknown as {
    check(
      request: { service: string },
      done: (error: Error | null, answer: { status: string }) => void,
    ): void;
    close(): void;
  };
  return new Promise<string>((resolve, reject) => {
    client.check({ service: '' }, (error, answer) => {
      client.close();
      if (error) reject(error);
      else resolve(answer.status);
    });
  });
}

/** The spans of one trace, with what is needed to walk up from any of them. */
function traceOf(spans: ReceivedSpan[], traceId: string) {
  const inTrace = spans.filter((span) => span.traceId === traceId);
  const byId = new Map(inTrace.map((span) => [span.spanId, span]));
  const ancestors = (span: ReceivedSpan): ReceivedSpan[] => {
    const chain: ReceivedSpan[] = [];
    for (let parent = byId.get(span.parentSpanId); parent; parent = byId.get(parent.parentSpanId)) {
      chain.push(parent);
    }
    return chain;
  };
  return { spans: inTrace, byId, ancestors };
}

const describeSpan = (span: ReceivedSpan) => `${span.service}: ${span.kind} ${span.name}`;

/**
 * One GET on a connection of its own (`Connection: close`), read to its end: a keep-alive
 * connection whose answer ends just as SIGTERM arrives holds the shutdown for
 * SHUTDOWN_TIMEOUT_MS.
 */
function getOnce(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('latin1'),
        }),
      );
      res.on('error', reject);
    }).on('error', reject);
  });
}

/**
 * The production shape as processes (proxy, lathens, crathens, the storage service on FerretDB,
 * Redis for the queue and the cache), every one exporting its spans over OTLP/HTTP to a loopback
 * receiver. One cold `.zip` request must be one trace: the proxy's request, its queued fetch,
 * crathens' job, the save to the storage service and MongoDB, and the read back.
 */
describe('one trace across the deployment', () => {
  const token = randomBytes(24).toString('hex');
  const collectorKey = `collector-key-${randomBytes(8).toString('hex')}`;
  const started: AppProcess[] = [];
  let fixtures: FixtureModules;
  let receiver: OtlpReceiver;
  let sandbox: string;
  let proxyUrl = '';
  let storageGrpc = '';
  /** Every process's /metrics. */
  const metricsUrls: string[] = [];

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    receiver = await startOtlpReceiver();
    sandbox = await createTempDir('e2e-tracing-');
    await mkdir(join(sandbox, 'tmp'));
    const prefix = `trace-${randomBytes(4).toString('hex')}`;
    const base = {
      PATH: process.env['PATH'] ?? '',
      HOME: fixtures.env['HOME'] ?? '',
      TMPDIR: join(sandbox, 'tmp'),
      LOG_LEVEL: 'warn',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_HEADERS: `authorization=Bearer%20${collectorKey}`,
      // Nothing is sent on a timer during the test: every span arrives through the flush at
      // graceful shutdown, which is what this proves too.
      OTEL_BSP_SCHEDULE_DELAY: '600000',
    };
    const start = async (app: string, env: Record<string, string>, ready: RegExp) => {
      const process = await startAppProcess(main(app), { env: { ...base, ...env }, cwd: sandbox, ready });
      started.push(process);
      return process;
    };
    const storage = await start(
      'storage',
      {
        STORAGE_BACKEND: 'mongo',
        MONGODB_URI: inject('mongoUri'),
        MONGODB_DATABASE: `e2e_${randomBytes(4).toString('hex')}`,
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        STORAGE_TOKEN: token,
      },
      /grpc 127\.0\.0\.1:(\d+) http (\d+)/,
    );
    metricsUrls.push(`http://127.0.0.1:${storage.match[2] ?? ''}/metrics`);
    storageGrpc = `127.0.0.1:${storage.match[1] ?? ''}`;
    const storageEnv = {
      STORAGE_TYPE: 'grpc',
      STORAGE_GRPC_URL: `127.0.0.1:${storage.match[1] ?? ''}`,
      STORAGE_TOKEN: token,
    };
    const lathens = await start(
      'lathens',
      {
        ...fixtures.directEnv,
        ...storageEnv,
        REDIS_URL: inject('redisUrl'),
        KEY_PREFIX: `${prefix}:`,
        GRPC_PORT: '0',
        HTTP_PORT: '0',
        GRPC_TOKEN: token,
        UPSTREAM: 'direct',
      },
      /lathens listening: grpc (\S+) http (\S+)/,
    );
    metricsUrls.push(`${lathens.match[2] ?? ''}/metrics`);
    const lathensEnv = { LATHENS_GRPC_URL: lathens.match[1] ?? '', LATHENS_GRPC_TOKEN: token };
    const queueEnv = { QUEUE_REDIS_URL: inject('redisUrl'), QUEUE_PREFIX: prefix };
    const crathens = await start(
      'crathens',
      {
        ...fixtures.directEnv,
        ...storageEnv,
        ...lathensEnv,
        ...queueEnv,
        UPSTREAM: 'direct',
        GO_WORK_DIR: join(sandbox, 'tmp'),
        ADMIN_PORT: '0',
      },
      /crathens running: admin (\S+)/,
    );
    const proxy = await start(
      'proxy',
      { ...fixtures.directEnv, ...storageEnv, ...lathensEnv, ...queueEnv, PORT: '0', UPSTREAM: 'direct' },
      /export GOPROXY=(\S+)/,
    );
    proxyUrl = proxy.match[1] ?? '';
    metricsUrls.push(`${crathens.match[1] ?? ''}/metrics`, `${proxyUrl}/metrics`);
  });

  afterAll(async () => {
    for (const process of [...started].reverse()) await process.stop();
    await receiver?.close();
    await fixtures?.close();
    if (sandbox) await removeDir(sandbox);
  });

  it('follows a cold .zip request from the proxy through the queue and crathens to storage and MongoDB (and lathens)', async () => {
    const module = fixtures.hello;
    const version = module.versions[0] ?? '';
    // Probes and scrapes first: none of them, nor what they cause in storage, may be traced.
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      expect((await getOnce(`${proxyUrl}${path}`, {})).status).toBe(200);
    }
    // And a kubelet's gRPC probe of the storage service, with no trace context of its own.
    expect(await grpcHealthCheck(storageGrpc)).toBe('SERVING');
    const response = await getOnce(`${proxyUrl}/${module.escapedPath}/@v/${version}.zip`, {
      'X-Request-Id': 'cold-zip-1',
    });
    expect(response.status).toBe(200);
    expect(response.headers['x-request-id']).toBe('cold-zip-1');

    // Metric labels are bounded: no module path in any series of any process (the VCS host,
    // the path's first element, may be one).
    for (const url of metricsUrls) {
      const metrics = await getOnce(url, {});
      expect(metrics.status, url).toBe(200);
      const labelled = metrics.body.split('\n').filter((line) => line.includes('{'));
      expect(labelled.length, url).toBeGreaterThan(0);
      expect(
        labelled.filter((line) => line.includes(module.path) || line.includes(module.escapedPath)),
      ).toEqual([]);
    }

    // Graceful shutdown flushes every process's spans (nothing was sent before: see the delay).
    const exits = [];
    for (const process of [...started].reverse()) exits.push(await process.stop());
    expect(exits).toEqual([0, 0, 0, 0]);
    const all = receiver.spans();

    const requests = all.filter(
      (span) =>
        span.service === 'proxy' &&
        span.kind === 'server' &&
        span.attributes['modproxy.request_id'] === 'cold-zip-1',
    );
    expect(requests.map(describeSpan)).toEqual(['proxy: server GET zip']);
    const request = requests[0] as ReceivedSpan;
    expect(request.parentSpanId).toBe('');
    const trace = traceOf(all, request.traceId);
    // TRACE_DUMP=1 prints the trace as a tree, to see what a change did to it.
    if (process.env['TRACE_DUMP']) {
      const print = (span: ReceivedSpan, depth: number): void => {
        console.log(`${'  '.repeat(depth)}${describeSpan(span)} [${span.scope}]`);
        for (const child of trace.spans.filter((c) => c.parentSpanId === span.spanId))
          print(child, depth + 1);
      };
      print(request, 0);
    }
    const services = new Set(trace.spans.map((span) => span.service));
    expect([...services].sort()).toEqual(['crathens', 'lathens', 'proxy', 'storage']);

    // proxy → queue: the add is a PRODUCER span of the request, in the proxy.
    const producer = trace.spans.find((span) => span.kind === 'producer' && span.name === 'send fetch');
    expect(producer?.service).toBe('proxy');
    expect(producer && trace.ancestors(producer)).toContainEqual(request);
    // queue → crathens: the job's CONSUMER span is the producer's child, in crathens.
    const consumer = trace.spans.find((span) => span.kind === 'consumer' && span.name === 'process fetch');
    expect(consumer?.service).toBe('crathens');
    expect(consumer?.parentSpanId).toBe(producer?.spanId);
    expect(consumer?.attributes['messaging.message.id']).toBe(`${module.path}@${version}`);
    // crathens → storage → MongoDB: the save, down to the database commands it made.
    const savedToMongo = trace.spans.filter(
      (span) =>
        span.service === 'storage' &&
        span.scope === '@opentelemetry/instrumentation-mongodb' &&
        consumer !== undefined &&
        trace.ancestors(span).includes(consumer),
    );
    expect(savedToMongo.length).toBeGreaterThan(0);
    const saveChain = trace.ancestors(savedToMongo[0] as ReceivedSpan).map(describeSpan);
    expect(saveChain).toContainEqual(
      expect.stringMatching(/^storage: server grpc\.modproxy\.storage\.v1\.StorageService\//),
    );
    expect(saveChain).toContainEqual(
      expect.stringMatching(/^crathens: client grpc\.modproxy\.storage\.v1\.StorageService\//),
    );
    // And the proxy reads the zip back from storage (MongoDB again) under the same request.
    const readBack = trace.spans.filter(
      (span) =>
        span.service === 'storage' &&
        span.scope === '@opentelemetry/instrumentation-mongodb' &&
        !(consumer && trace.ancestors(span).includes(consumer)),
    );
    expect(readBack.length).toBeGreaterThan(0);
    expect(trace.ancestors(readBack[0] as ReceivedSpan).map(describeSpan)).toContainEqual(
      expect.stringMatching(/^proxy: client grpc\.modproxy\.storage\.v1\.StorageService\//),
    );

    // lathens is told of the stored version, under the same job.
    const observe = trace.spans.find((span) => span.service === 'lathens' && span.kind === 'server');
    expect(observe?.name).toBe('grpc.modproxy.lathens.v1.VersionService/Observe');
    expect(observe && consumer && trace.ancestors(observe)).toContainEqual(consumer);
    // The proxy's reader of job events outlives the request that started it: not in its trace.
    expect(trace.spans.filter((span) => /^(xread|xrevrange)$/i.test(span.name)).map(describeSpan)).toEqual(
      [],
    );

    // One trace: a single root (the request) and no span whose parent is missing.
    expect(trace.spans.filter((span) => span.parentSpanId === '').map(describeSpan)).toEqual([
      'proxy: server GET zip',
    ]);
    expect(
      trace.spans.filter((span) => span.parentSpanId !== '' && !trace.byId.has(span.parentSpanId)),
    ).toEqual([]);

    // Nothing of the probes: no span of them, and none they caused downstream (those would be
    // spans with a parent nobody exported).
    const known = new Set(all.map((span) => span.spanId));
    expect(
      all.filter((span) => ['/healthz', '/readyz', '/metrics'].includes(String(span.attributes['url.path']))),
    ).toEqual([]);
    expect(all.filter((span) => /grpc\.health\.v1/.test(span.name))).toEqual([]);
    expect(
      all.filter((span) => span.parentSpanId !== '' && !known.has(span.parentSpanId)).map(describeSpan),
    ).toEqual([]);

    // The configured OTLP headers reach the collector and nowhere else.
    expect(
      receiver.requestHeaders().every((headers) => headers['authorization'] === `Bearer ${collectorKey}`),
    ).toBe(true);
    for (const process of started) expect(process.stdout() + process.stderr()).not.toContain(collectorKey);
    for (const body of receiver.rawBodies()) {
      expect(body).not.toContain(token);
      expect(body).not.toContain(collectorKey);
    }
  });
});

describe('log lines and export with no OTLP configured', () => {
  let fixtures: FixtureModules;
  let dir: string;

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    dir = await createTempDir('e2e-trace-logs-');
  });
  afterAll(async () => {
    await fixtures?.close();
    if (dir) await removeDir(dir);
  });

  /** The embedded proxy for one cold `.zip` request (with the caller's trace), then stopped. */
  const serveOneZip = async (env: Record<string, string>, requestId: string, traceId: string) => {
    const connections = createConnectionLog(await createTempDir('connections-', dir));
    const proxy = await startAppProcess(main('proxy'), {
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: fixtures.env['HOME'] ?? '',
        ...fixtures.directEnv,
        ...connections.env,
        STORAGE_DIR: join(dir, `storage-${requestId}`),
        GO_WORK_DIR: dir,
        PORT: '0',
        UPSTREAM: 'direct',
        LOG_LEVEL: 'debug',
        ...env,
      },
      preload: [connections.preload],
      cwd: dir,
      ready: /export GOPROXY=(\S+)/,
    });
    const module = fixtures.hello;
    const response = await getOnce(
      `${proxy.match[1] ?? ''}/${module.escapedPath}/@v/${module.versions[0] ?? ''}.zip`,
      {
        traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
        'X-Request-Id': requestId,
      },
    );
    expect(response.status).toBe(200);
    expect(response.headers['x-request-id']).toBe(requestId);
    // Shutdown flushes the tracer provider: an exporter, had there been one, would send now.
    expect(await proxy.stop(), proxy.stdout() + proxy.stderr()).toBe(0);
    const lines = proxy
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    return { lines, connections: connections.connections() };
  };

  it('puts the request’s trace id and request id on its log lines, and exports nothing, not even at shutdown', async () => {
    // The caller's trace (a load balancer's, another service's) is continued, not replaced.
    const traceId = randomBytes(16).toString('hex');
    const { lines, connections } = await serveOneZip({}, 'logs-1', traceId);
    const ofRequest = lines.filter((line) => line['request_id'] === 'logs-1');
    // Written deep in the module service (the fetch), by code never handed a request's logger;
    // the HTTP layer's own line follows unless the client closed before the response's end.
    expect(ofRequest.map((line) => line['msg'])).toContain('fetched and stored');
    for (const line of ofRequest) {
      expect(line['trace_id']).toBe(traceId);
      expect(line['span_id']).toMatch(/^[0-9a-f]{16}$/);
    }
    expect(lines.filter((line) => line['trace_id'] === traceId && line['request_id'] !== 'logs-1')).toEqual(
      [],
    );
    // The proxy fetches with the go command and stores on disk: it has nothing to connect to,
    // and with no OTLP configured it tried no collector either.
    expect(connections).toEqual([]);

    // The control: configured, the same run connects to its collector and sends the trace.
    const collector = await startOtlpReceiver();
    try {
      const controlTrace = randomBytes(16).toString('hex');
      const configured = await serveOneZip(
        { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
        'logs-2',
        controlTrace,
      );
      expect(configured.connections).toContain(collector.endpoint.replace('http://', ''));
      expect(
        collector
          .spans()
          .filter((span) => span.traceId === controlTrace)
          .map(describeSpan),
      ).toEqual(['proxy: server GET zip']);
    } finally {
      await collector.close();
    }
  });

  it('stops start-up on a wrong OpenTelemetry variable, naming it and never its secret', async () => {
    const attempt = startAppProcess(main('proxy'), {
      env: {
        PATH: process.env['PATH'] ?? '',
        STORAGE_TYPE: 'memory',
        PORT: '0',
        OTEL_TRACES_EXPORTER: 'jaeger',
        OTEL_EXPORTER_OTLP_HEADERS: 'api-key s3cret-otel-key',
      },
      cwd: dir,
      ready: /export GOPROXY=(\S+)/,
    });
    const failure = await attempt.then(
      () => 'started',
      (error: unknown) => String(error),
    );
    expect(failure).toContain('exited with 2 before it was ready');
    expect(failure).toContain('OTEL_TRACES_EXPORTER: must be otlp or none');
    expect(failure).toContain('OTEL_EXPORTER_OTLP_HEADERS: must be a comma-separated list');
    expect(failure).not.toContain('s3cret-otel-key');
  });
});
