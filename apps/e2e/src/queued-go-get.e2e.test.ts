import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createQueueRedis, FetchQueue } from '@modproxy/queue';
import { createFixtureModules, createGoWorkspace, type FixtureModules } from '@modproxy/testing';
import { ObservingRelay } from './observing-relay';
import { startQueuedShape, type QueuedShape } from './queued-shape';

/** The prefix's FetchVersion job as it stood when the proxy's answer reached the relay. */
interface JobAtAnswer {
  jobId?: string;
  state?: string;
  attemptsMade?: number;
}

/**
 * `go get <module>@<version>` through the production shape with the fetch queue, fetching
 * `direct` from the fixture git repositories: the go command also asks for the version of every
 * shorter prefix of the path (the bare host `example.test`), whose direct fetch fails (the
 * fixtures' HTTPS proxy is a closed port). That answer must come from the job's first attempt,
 * not after its retries (2 + 4 + 8 + 16 s of backoff).
 */
describe('go get through the fetch queue in the production shape (direct)', () => {
  let fixtures: FixtureModules;
  let shape: QueuedShape;
  let jobs: FetchQueue;
  let relay: ObservingRelay<JobAtAnswer>;
  let connection: Redis;

  beforeAll(async () => {
    fixtures = await createFixtureModules();
    shape = await startQueuedShape({
      mongoUri: inject('mongoUri'),
      redisUrl: inject('redisUrl'),
      upstream: 'direct',
      replicas: 1,
      env: fixtures.directEnv,
    });
    connection = createQueueRedis(inject('redisUrl'));
    jobs = new FetchQueue({ connection, prefix: shape.prefix });
    // Before the go command gets an answer for module@version, note its job's state and attempts.
    relay = await ObservingRelay.start(shape.proxies[0] ?? '', async (path) => {
      const match = /^\/(.+)\/@v\/(v[^/]+)\.info$/.exec(path);
      if (!match) return {};
      const jobId = `${match[1] ?? ''}@${match[2] ?? ''}`;
      const job = await jobs.queue.getJob(jobId);
      return { jobId, state: await job?.getState(), attemptsMade: job?.attemptsMade };
    });
  });

  afterAll(async () => {
    await relay?.stop();
    await jobs?.close();
    await connection?.quit().catch(() => undefined);
    await shape?.stop();
    await fixtures?.close();
  });

  it('completes go get <module>@<version> with the prefix answered by its first failed attempt, while the job keeps its retries', async () => {
    const { hello } = fixtures;
    // Modules come only through the proxy: no git config to reach the fixture repositories.
    const { GIT_CONFIG_GLOBAL: _unreachable, ...env } = fixtures.env;
    const workspace = await createGoWorkspace({
      env: { ...env, GOPROXY: relay.url, GOFLAGS: '-modcacherw' },
    });
    try {
      const got = await workspace.go(['get', `${hello.path}@v1.10.0`]);
      expect(got.exitCode, `${got.stderr}\n${shape.logs().slice(-10_000)}`).toBe(0);
      const listed = await workspace.go(['list', '-m', hello.path]);
      expect(listed.stdout.trim()).toBe(`${hello.path} v1.10.0`);
    } finally {
      await workspace.remove();
    }

    const answers = relay.answers.filter((answer) => answer.path.endsWith('/@v/v1.10.0.info'));
    expect(answers.map((answer) => [answer.path, answer.status])).toEqual(
      expect.arrayContaining([
        [`/${hello.escapedPath}/@v/v1.10.0.info`, 200],
        ['/example.test/@v/v1.10.0.info', 502],
      ]),
    );
    // The bare host's job had made one attempt when its 502 reached the go command, and was
    // waiting for the retry its backoff schedules (the fetch goes on in the background).
    const prefix = answers.find((answer) => answer.path === '/example.test/@v/v1.10.0.info');
    expect(prefix?.observed).toEqual({ jobId: 'example.test@v1.10.0', state: 'delayed', attemptsMade: 1 });
    expect(await shape.inspector.exists(hello.path, 'v1.10.0')).toBe(true);
  }, 300_000);
});
