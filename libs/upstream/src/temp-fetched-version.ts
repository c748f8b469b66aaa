import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { errors } from '@modproxy/errors';
import type { FetchedVersion } from './upstream';

/** A fetched version whose zip is `zipFile` in its own temporary `dir`, removed on release. */
export function fetchedVersion(
  content: Pick<FetchedVersion, 'module' | 'version' | 'info' | 'mod' | 'zipSize'>,
  dir: string,
  zipFile: string,
  op: string,
): FetchedVersion {
  let released = false;
  return {
    ...content,
    zipPath: zipFile,
    openZip(): Readable {
      if (released) {
        throw errors.failedPrecondition(op, 'the fetched zip was already released', {
          module: content.module,
          version: content.version,
        });
      }
      return createReadStream(zipFile);
    },
    async release(): Promise<void> {
      released = true;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
