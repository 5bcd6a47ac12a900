// The Hugging Face hub cache shared by huggingface_hub, transformers, vLLM and llama.cpp
// (~/.cache/huggingface/hub), in its standard layout:
//   models--<org>--<name>/blobs/<etag>                 contents, named by sha256 (LFS) or git blob id
//   models--<org>--<name>/snapshots/<commit>/<path>    relative symlinks into blobs/
//   models--<org>--<name>/refs/<revision>              the commit a branch or tag named when fetched
// Models those tools downloaded are found here, and what this server downloads is written here so
// that they find it. Nothing in this module touches the network.
import { copyFile, lstat, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { getRepoFolderName, REGEX_COMMIT_HASH, scanCachedRepo } from '@huggingface/hub';
import { expandHome } from './model-spec.ts';

function nonEmpty(value: string | undefined): string | undefined {
  return value?.trim() ? value : undefined;
}

/** $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface (huggingface_hub's rule). */
export function hfHomeDir(env: NodeJS.ProcessEnv): string {
  const home = nonEmpty(env.HF_HOME) ?? join(nonEmpty(env.XDG_CACHE_HOME) ?? join(homedir(), '.cache'), 'huggingface');
  return resolve(expandHome(home));
}

/** $HF_HUB_CACHE, else the older $HUGGINGFACE_HUB_CACHE, else <HF home>/hub. */
export function hfHubCacheDir(env: NodeJS.ProcessEnv): string {
  const explicit = nonEmpty(env.HF_HUB_CACHE) ?? nonEmpty(env.HUGGINGFACE_HUB_CACHE);
  return explicit ? resolve(expandHome(explicit)) : join(hfHomeDir(env), 'hub');
}

export function isCommitHash(revision: string): boolean {
  return REGEX_COMMIT_HASH.test(revision);
}

/** The folder of a model repo in the cache: `models--<org>--<name>`. */
export function hfRepoDir(hubCache: string, repoId: string): string {
  return join(hubCache, getRepoFolderName({ name: repoId, type: 'model' }));
}

export function snapshotDir(repoDir: string, commit: string): string {
  return join(repoDir, 'snapshots', commit);
}

export function blobPath(repoDir: string, etag: string): string {
  return join(repoDir, 'blobs', etag);
}

/**
 * The path our cross-process lock for one blob is kept under, in the cache's `.locks` folder
 * (which cache scanners skip). huggingface_hub locks `<etag>.lock` there with a lock *file*;
 * ours is a directory, so it gets a name of its own.
 */
export function blobLockTarget(hubCache: string, repoId: string, etag: string): string {
  return join(hubCache, '.locks', getRepoFolderName({ name: repoId, type: 'model' }), `${etag}.mlx-batch-server`);
}

/**
 * The commit a revision stands for in the cache: a commit hash whose snapshot exists, or the
 * commit `refs/<revision>` holds (a branch, a tag, or `refs/pr/N`). Undefined when not cached.
 */
export async function cachedCommit(repoDir: string, revision: string): Promise<string | undefined> {
  if (isCommitHash(revision)) {
    const info = await stat(snapshotDir(repoDir, revision)).catch(() => undefined);
    return info?.isDirectory() ? revision : undefined;
  }
  const ref = await readFile(join(repoDir, 'refs', revision), 'utf8').catch(() => undefined);
  const commit = ref?.trim();
  return commit && isCommitHash(commit) ? commit : undefined;
}

/** Records which commit a revision named (huggingface_hub writes the bare hash, no newline). */
export async function writeRef(repoDir: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const ref = join(repoDir, 'refs', revision);
  await mkdir(dirname(ref), { recursive: true });
  // Written in place, as huggingface_hub does: a temporary file beside it would read as a ref.
  await writeFile(ref, commit);
}

export interface SnapshotEntries {
  /** Files that can be read (links whose blob is there), as repo paths with '/', sorted. */
  files: string[];
  /** Links whose blob is gone (deleted by a cache cleanup, or never finished). */
  dangling: string[];
}

/** What a snapshot folder holds. Empty when it does not exist. */
export async function snapshotEntries(dir: string): Promise<SnapshotEntries> {
  const entries: SnapshotEntries = { files: [], dangling: [] };
  const walk = async (sub: string): Promise<void> => {
    const names = await readdir(join(dir, sub)).catch(() => [] as string[]);
    for (const name of names) {
      const path = sub ? `${sub}/${name}` : name;
      const info = await stat(join(dir, path)).catch(() => undefined);
      if (info?.isDirectory()) await walk(path);
      else if (info?.isFile()) entries.files.push(path);
      else if (await lstat(join(dir, path)).catch(() => undefined)) entries.dangling.push(path);
    }
  };
  await walk('');
  entries.files.sort();
  entries.dangling.sort();
  return entries;
}

/**
 * Points `snapshots/<commit>/<file>` at `blobs/<etag>` with a relative link, as huggingface_hub
 * does (the cache stays valid when moved); where links cannot be made, copies the blob instead.
 */
export async function linkSnapshotFile(repoDir: string, commit: string, file: string, etag: string): Promise<string> {
  const link = join(snapshotDir(repoDir, commit), ...file.split('/'));
  const blob = blobPath(repoDir, etag);
  await mkdir(dirname(link), { recursive: true });
  await rm(link, { force: true });
  try {
    await symlink(relative(dirname(link), blob), link);
  } catch {
    await copyFile(blob, link);
  }
  return link;
}

/** "main → 0123abcd…, v1.0 → …" for the revisions cached for a repo, to explain a miss. */
export async function describeCachedRevisions(repoDir: string): Promise<string | undefined> {
  try {
    const repo = await scanCachedRepo(repoDir);
    const described = repo.revisions.flatMap((r) => (r.refs.length > 0 ? r.refs.map((ref) => `${ref} → ${r.commitOid}`) : [r.commitOid]));
    return described.length > 0 ? described.sort().join(', ') : undefined;
  } catch {
    // scanCachedRepo refuses a repo without refs/ or with a ref to a missing snapshot.
    const commits = await readdir(join(repoDir, 'snapshots')).catch(() => [] as string[]);
    return commits.length > 0 ? commits.sort().join(', ') : undefined;
  }
}
