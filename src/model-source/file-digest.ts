// Size and sha256 checks for cached files. Hashing 100 MB takes a noticeable fraction of a
// second, so a verified file gets a small marker beside it recording what was checked; a later
// start trusts the file while its size and modification time still match the marker.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { ModelSourceError } from './errors.ts';

export interface ExpectedDigest {
  size: number;
  /** Lower-case hex; undefined when the source gives no hash (size is still checked). */
  sha256?: string;
  /** The git blob id (lower-case hex sha1 of "blob <size>\0" + content), for files outside LFS. */
  gitBlobId?: string;
}

interface VerifiedMarker {
  size: number;
  sha256?: string;
  mtimeMs: number;
}

export function verifiedMarkerPath(file: string): string {
  return `${file}.verified.json`;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The id git (and the hub) gives a file's content. */
export async function gitBlobIdOfFile(path: string): Promise<string> {
  const hash = createHash('sha1').update(`blob ${(await stat(path)).size}\0`);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Throws a checksum_mismatch error unless the actual size and hashes are the expected ones. */
export function checkDigest(what: string, actual: { size: number; sha256?: string; gitBlobId?: string }, expected: ExpectedDigest): void {
  if (actual.size !== expected.size) {
    throw new ModelSourceError('checksum_mismatch', `${what}: expected ${expected.size} bytes, got ${actual.size}`);
  }
  if (expected.sha256 !== undefined && actual.sha256 !== expected.sha256.toLowerCase()) {
    throw new ModelSourceError('checksum_mismatch', `${what}: expected sha256 ${expected.sha256}, got ${actual.sha256}`);
  }
  if (expected.gitBlobId !== undefined && actual.gitBlobId !== expected.gitBlobId.toLowerCase()) {
    throw new ModelSourceError('checksum_mismatch', `${what}: expected git blob id ${expected.gitBlobId}, got ${actual.gitBlobId}`);
  }
}

/** Records that `file` was verified against `expected`, as of its current size and mtime. */
export async function markVerified(file: string, expected: ExpectedDigest): Promise<void> {
  const info = await stat(file);
  const marker: VerifiedMarker = { size: info.size, sha256: expected.sha256?.toLowerCase(), mtimeMs: info.mtimeMs };
  await writeFile(verifiedMarkerPath(file), `${JSON.stringify(marker)}\n`);
}

/**
 * True when `file` exists and matches `expected`. Trusts a marker whose size, mtime and hash
 * still match; otherwise re-hashes, refreshing the marker on success and deleting the file and
 * marker on mismatch (so the caller fetches it again).
 */
export async function isVerifiedFile(file: string, expected: ExpectedDigest): Promise<boolean> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) return false;
  const marker = await readMarker(file);
  const wantedSha = expected.sha256?.toLowerCase();
  if (
    marker &&
    marker.size === info.size &&
    marker.mtimeMs === info.mtimeMs &&
    marker.sha256 === wantedSha &&
    info.size === expected.size
  ) {
    return true;
  }
  try {
    checkDigest(file, { size: info.size, sha256: wantedSha && (await sha256File(file)) }, expected);
  } catch {
    await rm(file, { force: true });
    await rm(verifiedMarkerPath(file), { force: true });
    return false;
  }
  await markVerified(file, expected);
  return true;
}

async function readMarker(file: string): Promise<VerifiedMarker | undefined> {
  try {
    return JSON.parse(await readFile(verifiedMarkerPath(file), 'utf8')) as VerifiedMarker;
  } catch {
    return undefined;
  }
}
