import type { ImageConfig } from './dockerfile-model';
import type { HealthCheck } from './health-check';
import type { AppName } from './repo-paths';

/**
 * One app container as a deployment file describes it, whatever the file (compose or
 * Kubernetes): what the container runs, with what, and how the orchestrator decides it is up.
 */
export interface ContainerSpec {
  /** The compose service or the Kubernetes workload. */
  name: string;
  app: AppName;
  /** The image's configuration (its Dockerfile target). */
  image: ImageConfig;
  /** What the container executes: the file's entrypoint/command, else the image's. */
  argv: string[];
  /** The image's environment with the file's on top. */
  env: Record<string, string>;
  /** Container paths that are writable mounts (volumes, tmpfs, emptyDir). */
  writable: string[];
  /** Checks that must pass before the container counts as ready (compose healthcheck; startup and readiness probes). */
  readiness: HealthCheck[];
  /** Checks that must keep passing once it is ready (liveness probes). */
  liveness: HealthCheck[];
  /** Containers that must be ready (`service_healthy`) or started (`service_started`) first. */
  dependsOn: Record<string, 'service_healthy' | 'service_started'>;
}

/** A server the deployment runs from a stock image (Redis, MongoDB), started locally by the test. */
export interface BackingServiceSpec {
  name: string;
  kind: 'redis' | 'mongo';
  /** The port the image's server listens on in the container, and every name that routes to it. */
  containerPort: number;
}

/** The port a stock image's server listens on: a fact of the official redis and mongo images. */
export const STOCK_IMAGE_PORTS = { redis: 6379, mongo: 27017 } as const;

/** Which stock server an image is, if it is one the test can stand in for. */
export function stockImageKind(image: string | undefined): 'redis' | 'mongo' | undefined {
  if (!image) return undefined;
  const name = image.split(':')[0]?.split('/').at(-1);
  return name === 'redis' || name === 'mongo' ? name : undefined;
}

/** The Dockerfile target an app image name stands for: `modproxy/<app>:<tag>`. */
export function appOfImage(image: string | undefined, apps: readonly AppName[]): AppName | undefined {
  const name = image?.split(':')[0]?.split('/').at(-1);
  return apps.find((app) => app === name);
}
