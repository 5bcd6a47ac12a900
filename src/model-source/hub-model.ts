// Fetches a model repo from the Hugging Face hub into the cache, in Hugging Face layout. Only
// the files the server loads are fetched (config, tokenizer, chat template, safetensors
// weights), not the repo's ONNX exports, GGUFs or training artifacts. A repo whose files are all
// present is used without contacting the hub again.
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withCacheLock } from './cache-lock.ts';
import { hubRepoDir } from './cache-dir.ts';
import { ModelSourceError } from './errors.ts';
import { downloadFile } from './http-download.ts';
import { hubFileUrl, hubHeaders, listHubRepo, type HubFile, type HubSettings } from './hub-client.ts';
import { startProgress, type ProgressOptions } from './progress.ts';

export interface HubFetchContext {
  cacheDir: string;
  offline: boolean;
  hub: HubSettings;
  progress: ProgressOptions;
}

/** Written last, once every file is in place: its presence means the directory is complete. */
export const COMPLETE_MARKER = '.mlx-batch-server-complete.json';

interface CompleteMarker {
  repoId: string;
  revision: string;
  files: HubFile[];
}

const WANTED_FILES = new Set([
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'chat_template.json',
  'model.safetensors.index.json',
]);

/** The top-level files of a repo that make up a Hugging Face-layout model. Pure. */
export function selectModelFiles(repoId: string, files: HubFile[]): HubFile[] {
  const topLevel = files.filter((file) => !file.name.includes('/') && !file.name.startsWith('.'));
  const selected = topLevel.filter((file) => WANTED_FILES.has(file.name) || file.name.endsWith('.safetensors'));
  const names = new Set(selected.map((file) => file.name));
  if (!names.has('config.json') || ![...names].some((name) => name.endsWith('.safetensors'))) {
    const ggufs = topLevel.filter((file) => file.name.endsWith('.gguf')).map((file) => file.name);
    throw new ModelSourceError(
      'invalid_model',
      `model: hub repo "${repoId}" has no config.json with *.safetensors weights` +
        (ggufs.length > 0 ? `; it has GGUF files (${ggufs.join(', ')}): download one and pass its path` : ''),
    );
  }
  return selected;
}

/** The repo's directory when a previous fetch completed and all its files are still there. */
export async function cachedHubModel(cacheDir: string, repoId: string): Promise<string | undefined> {
  const dir = hubRepoDir(cacheDir, repoId);
  let marker: CompleteMarker;
  try {
    marker = JSON.parse(await readFile(join(dir, COMPLETE_MARKER), 'utf8')) as CompleteMarker;
  } catch {
    return undefined;
  }
  for (const file of marker.files ?? []) {
    const info = await stat(join(dir, file.name)).catch(() => undefined);
    if (!info?.isFile() || (file.size !== undefined && info.size !== file.size)) return undefined;
  }
  return dir;
}

export async function fetchHubModel(repoId: string, ctx: HubFetchContext): Promise<string> {
  const cached = await cachedHubModel(ctx.cacheDir, repoId);
  if (cached) return cached;
  if (ctx.offline) {
    throw new ModelSourceError(
      'not_cached',
      `model: "${repoId}" is not in the cache (${hubRepoDir(ctx.cacheDir, repoId)}) and offline mode is on; ` +
        `fetch it once with network access or pass a local path`,
    );
  }
  const listing = await listHubRepo(repoId, ctx.hub);
  const files = selectModelFiles(repoId, listing.files);
  const dir = hubRepoDir(ctx.cacheDir, repoId);
  await mkdir(dir, { recursive: true });
  return withCacheLock(dir, async () => {
    const done = await cachedHubModel(ctx.cacheDir, repoId);
    if (done) return done;
    for (const file of files) {
      const dest = join(dir, file.name);
      const present = await stat(dest).catch(() => undefined);
      // A file is renamed into place only after its size and hash were checked.
      if (present?.isFile() && (file.size === undefined || present.size === file.size)) continue;
      await downloadFile(hubFileUrl(ctx.hub, repoId, listing.revision, file.name), dest, file, {
        headers: hubHeaders(ctx.hub),
        connectTimeoutMs: ctx.hub.connectTimeoutMs,
        startProgress: (total) => startProgress(ctx.progress, 'download', file.name, file.size ?? total),
      });
    }
    const marker: CompleteMarker = { repoId, revision: listing.revision, files };
    await writeFile(join(dir, COMPLETE_MARKER), `${JSON.stringify(marker, null, 1)}\n`);
    return dir;
  });
}
