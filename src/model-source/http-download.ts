// Downloads one URL into a file, safely across interruptions: bytes go to `<dest>.incomplete`
// (resumed with an HTTP Range request next time, as huggingface_hub does, whose partial blobs
// have the same name), the result is checked against the expected size and sha256 or git blob
// id, and only then renamed to `dest`. The caller holds the
// cache lock for `dest`, so no other process writes the same .incomplete file.
import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ModelSourceError } from './errors.ts';
import { checkDigest, gitBlobIdOfFile, sha256File, type ExpectedDigest } from './file-digest.ts';
import { fetchWithConnectTimeout, networkErrorReason } from './hub-client.ts';
import type { ProgressTask } from './progress.ts';

export interface DownloadOptions {
  headers: Record<string, string>;
  connectTimeoutMs: number;
  /** Abort when no bytes arrive for this long. */
  stallTimeoutMs?: number;
  /** Called once the total size is known. */
  startProgress: (total: number | undefined) => ProgressTask;
}

const DEFAULT_STALL_TIMEOUT_MS = 60_000;

export function incompletePath(dest: string): string {
  return `${dest}.incomplete`;
}

export async function downloadFile(url: string, dest: string, expected: Partial<ExpectedDigest>, options: DownloadOptions): Promise<void> {
  const partial = incompletePath(dest);
  let offset = (await stat(partial).catch(() => undefined))?.size ?? 0;
  if (expected.size !== undefined && offset > expected.size) {
    await rm(partial, { force: true });
    offset = 0;
  }
  if (expected.size === undefined || offset < expected.size) {
    await fetchInto(url, partial, offset, options);
  }
  await verifyAndPublish(url, partial, dest, expected);
}

async function fetchInto(url: string, partial: string, offset: number, options: DownloadOptions): Promise<void> {
  const controller = new AbortController();
  const headers = { ...options.headers, ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) };
  let response: Response;
  try {
    response = await fetchWithConnectTimeout(url, { headers, redirect: 'follow' }, options.connectTimeoutMs, controller);
  } catch (err) {
    throw new ModelSourceError('fetch_failed', `model: downloading ${url} failed: ${networkErrorReason(err)}`, { cause: err });
  }
  if (response.status === 416 && offset > 0) {
    // The partial file is not a prefix the server recognises: start over.
    await rm(partial, { force: true });
    return fetchInto(url, partial, 0, options);
  }
  if (!response.ok || !response.body) {
    throw new ModelSourceError('fetch_failed', `model: downloading ${url} failed: HTTP ${response.status}`);
  }
  // 206 continues the partial file; a 200 means the server ignored the range: start over.
  const resumed = response.status === 206 && offset > 0;
  const start = resumed ? offset : 0;
  const length = Number(response.headers.get('content-length'));
  const task = options.startProgress(Number.isFinite(length) && length > 0 ? start + length : undefined);
  let bytes = start;
  task.update(bytes);
  const stallMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  const stallTimer = setTimeout(() => controller.abort(new Error(`no data for ${stallMs} ms`)), stallMs);
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      task.update(bytes);
      stallTimer.refresh();
      done(null, chunk);
    },
  });
  try {
    await pipeline(
      Readable.fromWeb(response.body as WebReadableStream<Uint8Array>),
      counter,
      createWriteStream(partial, { flags: resumed ? 'a' : 'w' }),
    );
  } catch (err) {
    throw new ModelSourceError(
      'fetch_failed',
      `model: downloading ${url} was interrupted after ${bytes} bytes (${networkErrorReason(err)}); ` + `run again to resume`,
      { cause: err },
    );
  } finally {
    clearTimeout(stallTimer);
    task.finish();
  }
}

async function verifyAndPublish(url: string, partial: string, dest: string, expected: Partial<ExpectedDigest>): Promise<void> {
  const size = (await stat(partial)).size;
  try {
    checkDigest(
      `model: ${url}`,
      {
        size,
        sha256: expected.sha256 !== undefined ? await sha256File(partial) : undefined,
        gitBlobId: expected.gitBlobId !== undefined ? await gitBlobIdOfFile(partial) : undefined,
      },
      { size: expected.size ?? size, sha256: expected.sha256, gitBlobId: expected.gitBlobId },
    );
  } catch (err) {
    // A complete file with the wrong content cannot be resumed into the right one.
    await rm(partial, { force: true });
    throw err;
  }
  await rename(partial, dest);
}
