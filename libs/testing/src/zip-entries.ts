import { open, type ZipFile } from 'yauzl';

/** The file names in a zip archive, in archive order (tests compare zips by their contents). */
export async function listZipEntries(file: string): Promise<string[]> {
  const zip = await new Promise<ZipFile>((resolve, reject) => {
    open(file, { lazyEntries: true, autoClose: true }, (error, opened) =>
      error ? reject(error) : resolve(opened),
    );
  });
  return new Promise((resolve, reject) => {
    const names: string[] = [];
    zip.on('entry', (entry: { fileName: string }) => {
      names.push(entry.fileName);
      zip.readEntry();
    });
    zip.once('end', () => resolve(names));
    zip.once('error', reject);
    zip.readEntry();
  });
}
