import type { ComposeFile } from './compose-model';
import {
  appOfImage,
  type BackingServiceSpec,
  type ContainerSpec,
  STOCK_IMAGE_PORTS,
  stockImageKind,
} from './container-spec';
import type { DockerfileModel } from './dockerfile-model';
import { APPS } from './repo-paths';

/**
 * What `docker compose up` (no profile) runs, as container specs: the app services with the
 * image their build target makes (the file's entrypoint/command/environment over the image's),
 * and the stock servers (Redis, MongoDB) the test stands in for.
 */
export function composeContainers(
  compose: ComposeFile,
  dockerfile: DockerfileModel,
): { containers: ContainerSpec[]; backing: BackingServiceSpec[] } {
  const containers: ContainerSpec[] = [];
  const backing: BackingServiceSpec[] = [];
  for (const service of Object.values(compose.services)) {
    if (service.profiles.length > 0) continue;
    const kind = stockImageKind(service.image);
    if (kind) {
      backing.push({ name: service.name, kind, containerPort: STOCK_IMAGE_PORTS[kind] });
      continue;
    }
    const app =
      APPS.find((candidate) => candidate === service.buildTarget) ?? appOfImage(service.image, APPS);
    if (!app) throw new Error(`compose service ${service.name} is neither an app image nor Redis or MongoDB`);
    const image = dockerfile.image(service.buildTarget ?? app);
    // compose: `entrypoint` replaces the image's and drops its CMD; `command` replaces CMD.
    const entrypoint = service.entrypoint ?? image.entrypoint;
    const cmd = service.command ?? (service.entrypoint ? [] : image.cmd);
    // A service without a healthcheck of its own has its image's HEALTHCHECK.
    const healthcheck = service.healthcheck ?? image.healthcheck;
    containers.push({
      name: service.name,
      app,
      image,
      argv: [...entrypoint, ...cmd],
      env: { ...image.env, ...service.environment },
      writable: service.mounts.filter((mount) => !mount.readOnly).map((mount) => mount.target),
      readiness: healthcheck ? [{ kind: 'command', argv: healthcheck }] : [],
      liveness: [],
      dependsOn: Object.fromEntries(
        Object.entries(service.dependsOn).map(([name, condition]) => [
          name,
          condition === 'service_healthy' ? 'service_healthy' : 'service_started',
        ]),
      ),
    });
  }
  return { containers, backing };
}
