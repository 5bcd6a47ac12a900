// Builds a Hugging Face hub cache on disk the way huggingface_hub leaves it after a download:
// models--<org>--<name>/blobs/<etag> (sha256 for weights, as LFS files; git blob id for the rest),
// snapshots/<commit>/<path> as relative symlinks into blobs/, refs/<name> holding the bare commit.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';

export interface CachedRevision {
  /** 40 hex digits; see commitHash(). */
  commit: string;
  /** Branch or tag names that point at this commit (refs/<name>). */
  refs?: string[];
  /** Repo path → content. */
  files: Record<string, Buffer | string>;
}

/** A commit hash made from a label, so tests can name commits. */
export function commitHash(label: string): string {
  return createHash('sha1').update(label).digest('hex');
}

export function gitBlobId(data: Buffer): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Whether the hub keeps a file in LFS (and the cache names its blob by sha256). */
export function isLfsFile(path: string): boolean {
  return /\.(safetensors|gguf|bin)$/.test(path);
}

/** The name the cache gives a file's blob. */
export function etagOf(path: string, data: Buffer): string {
  return isLfsFile(path) ? sha256Hex(data) : gitBlobId(data);
}

export function repoFolder(hubCache: string, repoId: string): string {
  return join(hubCache, `models--${repoId.replace('/', '--')}`);
}

/** Writes one repo's revisions into `hubCache`; returns the snapshot folder of each commit. */
export async function writeCachedRepo(hubCache: string, repoId: string, revisions: CachedRevision[]): Promise<string[]> {
  const repo = repoFolder(hubCache, repoId);
  const snapshots: string[] = [];
  for (const revision of revisions) {
    const snapshot = join(repo, 'snapshots', revision.commit);
    for (const [path, content] of Object.entries(revision.files)) {
      const data = Buffer.from(content);
      const blob = join(repo, 'blobs', etagOf(path, data));
      await mkdir(dirname(blob), { recursive: true });
      await writeFile(blob, data);
      const link = join(snapshot, ...path.split('/'));
      await mkdir(dirname(link), { recursive: true });
      await symlink(relative(dirname(link), blob), link);
    }
    for (const ref of revision.refs ?? []) {
      await mkdir(dirname(join(repo, 'refs', ref)), { recursive: true });
      await writeFile(join(repo, 'refs', ref), revision.commit);
    }
    snapshots.push(snapshot);
  }
  return snapshots;
}

/** Every file of a directory (e.g. one writeTinyModel made), by name, for writeCachedRepo. */
export async function filesOf(dir: string): Promise<Record<string, Buffer>> {
  const files: Record<string, Buffer> = {};
  for (const name of await readdir(dir)) files[name] = await readFile(join(dir, name));
  return files;
}
