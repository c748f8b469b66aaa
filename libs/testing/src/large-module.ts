import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { escapePath, escapeVersion } from '@modproxy/gomod';
import { buildZip, type ZipEntrySpec } from './build-zip';

export interface LargeModuleOptions {
  /** Default `example.test/large`. */
  module?: string;
  /** Default `v1.0.0`. */
  version?: string;
  /** About how large the zip is: random (incompressible) data files of 4 MiB. Default 40 MiB. */
  zipBytes?: number;
}

export interface LargeModule {
  module: string;
  version: string;
  /** GOPROXY URL path of the zip, e.g. `/example.test/large/@v/v1.0.0.zip`. */
  zipUrlPath: string;
  zip: Buffer;
  zipSha256: string;
  info: Buffer;
  mod: Buffer;
}

const MiB = 1024 * 1024;

/**
 * Writes a valid module version with a large zip (random data files, so it stays large and
 * every byte matters) into `dir` in the GOPROXY layout (`@v/list`, `.info`, `.mod`, `.zip`,
 * `@latest`), for tests that need a download or a save to take a while.
 */
export async function writeLargeModule(dir: string, options: LargeModuleOptions = {}): Promise<LargeModule> {
  const module = options.module ?? 'example.test/large';
  const version = options.version ?? 'v1.0.0';
  const zipBytes = options.zipBytes ?? 40 * MiB;
  const prefix = `${module}@${version}/`;
  const mod = Buffer.from(`module ${module}\n\ngo 1.21\n`);
  const files: ZipEntrySpec[] = [
    { name: `${prefix}go.mod`, data: mod },
    {
      name: `${prefix}large.go`,
      data: `package large\n\n// Size is how many data bytes the module carries.\nconst Size = ${zipBytes}\n`,
    },
  ];
  for (let i = 0; i * 4 * MiB < zipBytes; i++) {
    files.push({
      name: `${prefix}data/blob-${i}.bin`,
      data: randomBytes(Math.min(4 * MiB, zipBytes - i * 4 * MiB)),
    });
  }
  const zip = await buildZip(files.map((file) => ({ ...file, compress: false })));
  const info = Buffer.from(JSON.stringify({ Version: version, Time: '2024-05-06T07:08:09Z' }));
  const base = join(dir, ...escapePath(module).split('/'));
  await mkdir(join(base, '@v'), { recursive: true });
  const escaped = escapeVersion(version);
  await writeFile(join(base, '@v', 'list'), `${version}\n`);
  await writeFile(join(base, '@v', `${escaped}.info`), info);
  await writeFile(join(base, '@v', `${escaped}.mod`), mod);
  await writeFile(join(base, '@v', `${escaped}.zip`), zip);
  await writeFile(join(base, '@latest'), info);
  return {
    module,
    version,
    zipUrlPath: `/${escapePath(module)}/@v/${escaped}.zip`,
    zip,
    zipSha256: createHash('sha256').update(zip).digest('hex'),
    info,
    mod,
  };
}
