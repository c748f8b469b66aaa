import { cp, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { basename, join, posix, relative } from 'node:path';
import { createTempDir, removeDir } from '@modproxy/testing';
import type { DockerfileModel, ImageConfig } from './dockerfile-model';
import { REPO_ROOT } from './repo-paths';

/**
 * A container's file system on this machine: the image's files under its WORKDIR (made from
 * the Dockerfile's COPY instructions, so a file the image lacks is missing here too), one
 * empty directory per writable mount, and everything else unusable, as a read-only root is
 * for the app (paths there lead under a regular file, so nothing can be created, even by root).
 */
export class ContainerSandbox {
  private constructor(
    readonly dir: string,
    private readonly image: ImageConfig,
    private readonly mounts: string[],
  ) {}

  /**
   * Lays out `image` (a target of `dockerfile`) with `mounts` (container paths) writable. Build
   * stages work on a copy of the repository in their WORKDIR, so their outputs are taken from
   * the repository (dist/ built by the test setup); node_modules is linked, not copied.
   */
  static async create(
    dockerfile: DockerfileModel,
    image: ImageConfig,
    mounts: string[],
  ): Promise<ContainerSandbox> {
    const dir = await createTempDir(`deploy-${image.target}-`);
    const sandbox = new ContainerSandbox(
      dir,
      image,
      [...mounts].sort((a, b) => b.length - a.length),
    );
    await writeFile(join(dir, 'read-only-root'), 'the container root file system is read-only\n');
    for (const mount of mounts) await mkdir(sandbox.hostPath(mount), { recursive: true });
    for (const copy of image.copies) {
      if (!copy.destination.startsWith(`${image.workdir}/`) && copy.destination !== image.workdir) continue;
      for (const source of copy.sources) {
        const from =
          copy.from === undefined ? join(REPO_ROOT, source) : stageOutput(dockerfile, copy.from, source);
        if (from === undefined) continue;
        const target = copy.destination.endsWith('/')
          ? join(sandbox.hostPath(copy.destination), basename(source))
          : sandbox.hostPath(copy.destination);
        await mkdir(join(target, '..'), { recursive: true });
        if (basename(from) === 'node_modules') await symlink(from, target, 'dir');
        else await cp(from, target, { recursive: true, dereference: true });
      }
    }
    return sandbox;
  }

  /** Where a container path is here: a mount's directory, the image's files, or the unusable rest. */
  hostPath(containerPath: string): string {
    const path = posix.resolve('/', containerPath);
    const mount = this.mounts.find((candidate) => path === candidate || path.startsWith(`${candidate}/`));
    if (mount) return join(this.dir, 'mounts', mount.replace(/\//g, '_'), relative(mount, path));
    const workdir = this.image.workdir;
    if (path === workdir || path.startsWith(`${workdir}/`))
      return join(this.dir, 'image', relative(workdir, path));
    return join(this.dir, 'read-only-root', path);
  }

  /** The image's files as laid out, to compare after the run: the app must not have written there. */
  async imageFiles(): Promise<string[]> {
    return listTree(join(this.dir, 'image'));
  }

  async remove(): Promise<void> {
    await removeDir(this.dir);
  }
}

/** Where `source` (a path in stage `stage`) comes from in the repository, if the stage builds from it. */
function stageOutput(dockerfile: DockerfileModel, stage: string, source: string): string | undefined {
  if (!dockerfile.stages.some((candidate) => candidate.name === stage)) return undefined;
  const workdir = dockerfile.image(stage).workdir;
  if (!source.startsWith(`${workdir}/`)) return undefined;
  return join(REPO_ROOT, relative(workdir, source));
}

async function listTree(dir: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const names: string[] = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const path = `${prefix}${entry.name}`;
    names.push(path);
    if (entry.isDirectory()) names.push(...(await listTree(join(dir, entry.name), `${path}/`)));
  }
  return names;
}
