// Models from Hugging Face hub repos, kept in the shared Hugging Face cache (hf-cache.ts). A repo
// at a revision is looked up there first and, when what the server loads is present, used
// without any network access, whoever downloaded it (huggingface_hub, transformers, vLLM,
// llama.cpp, or this server). Otherwise its files are listed on the hub and the missing ones
// downloaded into the cache's blobs/, snapshots/ and refs/, where those tools find them too.
//
// What is fetched: of a safetensors repo, only the files the server loads (config, tokenizer,
// chat template, weights), not its ONNX exports, GGUFs or training artifacts; with `repo:QUANT`,
// or from a repo that has GGUF files only, the one GGUF file gguf-choice.ts picks.
//
// The cache's conventions come from @huggingface/hub; the transfer is ours (http-download.ts):
// its downloadFileToCacheDir neither resumes, reports progress nor checks hashes, and writes no
// refs/, and its snapshotDownload fetches every file of a repo.
import { mkdir, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { withCacheLock } from './cache-lock.ts';
import { legacyHubRepoDir } from './cache-dir.ts';
import { ModelSourceError } from './errors.ts';
import { gitBlobIdOfFile } from './file-digest.ts';
import { chooseGgufFile, DEFAULT_GGUF_QUANT, describeGgufs, ggufCandidates } from './gguf-choice.ts';
import {
  blobLockTarget,
  blobPath,
  cachedCommit,
  describeCachedRevisions,
  hfRepoDir,
  linkSnapshotFile,
  snapshotDir,
  snapshotEntries,
  writeRef,
} from './hf-cache.ts';
import { downloadFile } from './http-download.ts';
import { hubFileUrl, hubHeaders, listHubRepo, type HubFile, type HubSettings } from './hub-client.ts';
import { inspectLocalModel, type ModelFormat, type ResolvedModel } from './local-model.ts';
import { startProgress, type ProgressOptions } from './progress.ts';

export interface HubFetchContext {
  /** This server's own cache, where versions before the shared cache kept hub repos (only read). */
  cacheDir: string;
  /** The Hugging Face hub cache (…/huggingface/hub). */
  hfCacheDir: string;
  offline: boolean;
  hub: HubSettings;
  progress: ProgressOptions;
}

export interface HubModelRequest {
  repoId: string;
  /** A branch, tag or commit hash. Default: "main". */
  revision?: string;
  /** From `repo:QUANT`: which of the repo's GGUF files. */
  quant?: string;
}

export const DEFAULT_REVISION = 'main';

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

function isWantedHfFile(name: string): boolean {
  return !name.includes('/') && !name.startsWith('.') && (WANTED_FILES.has(name) || name.endsWith('.safetensors'));
}

/**
 * The files of a Hugging Face-layout model among a repo's files, or undefined when the repo is
 * not one (no config.json with *.safetensors). config.json comes last, so that a download
 * interrupted before the end never leaves a snapshot that looks complete.
 */
export function hfLayoutFiles(files: readonly HubFile[]): HubFile[] | undefined {
  const selected = files.filter((file) => isWantedHfFile(file.name));
  if (!selected.some((f) => f.name === 'config.json') || !selected.some((f) => f.name.endsWith('.safetensors'))) return undefined;
  return [...selected.filter((f) => f.name !== 'config.json'), ...selected.filter((f) => f.name === 'config.json')];
}

export interface ModelFilePlan {
  format: ModelFormat;
  /** The files to fetch. */
  files: HubFile[];
  /** The GGUF file's path in the repo; undefined for a Hugging Face-layout directory. */
  gguf?: string;
}

/** Which of a repo's files make up the model `repoId[:quant]`. Pure. */
export function planModelFiles(repoId: string, files: readonly HubFile[], quant?: string): ModelFilePlan {
  if (quant === undefined) {
    const hf = hfLayoutFiles(files);
    if (hf) return { format: 'hf', files: hf };
  }
  const gguf = chooseGgufFile(
    repoId,
    files.map((f) => f.name),
    quant,
  );
  const file = files.find((f) => f.name === gguf);
  if (!gguf || !file) {
    throw new ModelSourceError(
      'invalid_model',
      `model: hub repo "${repoId}" has neither config.json with *.safetensors weights nor a GGUF file`,
    );
  }
  return { format: 'gguf', files: [file], gguf };
}

function modelPath(snapshot: string, plan: Pick<ModelFilePlan, 'gguf'>): string {
  return plan.gguf ? join(snapshot, ...plan.gguf.split('/')) : snapshot;
}

export interface CacheLookup {
  /** The model's GGUF file or directory, when the cache holds everything it needs. */
  path?: string;
  /** Why a cached copy of the revision could not be used. */
  incomplete?: string;
  /** The GGUF files cached for the revision, when none matched the quant asked for. */
  cachedGgufs?: string;
}

/** The request's model from the cache, with no network access. */
export async function cachedHubModel(req: HubModelRequest, ctx: HubFetchContext): Promise<CacheLookup> {
  const repoDir = hfRepoDir(ctx.hfCacheDir, req.repoId);
  const commit = await cachedCommit(repoDir, req.revision ?? DEFAULT_REVISION);
  const found = commit ? await fromSnapshot(req, snapshotDir(repoDir, commit), ctx.offline) : {};
  if (!found.path && req.revision === undefined && req.quant === undefined) {
    const legacy = await legacyCachedModel(ctx.cacheDir, req.repoId);
    if (legacy) return { path: legacy };
  }
  return found;
}

async function fromSnapshot(req: HubModelRequest, snapshot: string, offline: boolean): Promise<CacheLookup> {
  const { files, dangling } = await snapshotEntries(snapshot);
  let incomplete: string | undefined;
  if (req.quant === undefined) {
    const hf = hfLayoutFiles([...files, ...dangling].map((name) => ({ name })));
    const missing = dangling.filter(isWantedHfFile);
    if (hf && missing.length > 0) incomplete = `the blobs of ${missing.join(', ')} are missing`;
    else if (hf) {
      try {
        await inspectLocalModel(snapshot);
        return { path: snapshot };
      } catch (err) {
        incomplete = (err as Error).message;
      }
    }
  }
  // With a quant no cached file matches, the file may still be on the hub: not a mistake yet.
  const quant = req.quant?.toLowerCase();
  const candidates = ggufCandidates(files);
  if (quant === undefined || candidates.some((c) => c.path.toLowerCase().includes(quant))) {
    const gguf = chooseGgufFile(req.repoId, files, req.quant);
    // Without a quant the choice is the repo's Q4_K_M: another cached quant is the choice only
    // offline, where the cache is all there is.
    const chosen = req.quant !== undefined || offline || gguf?.toLowerCase().includes(DEFAULT_GGUF_QUANT.toLowerCase());
    if (gguf && chosen) return { path: modelPath(snapshot, { gguf }) };
  }
  return { incomplete, cachedGgufs: candidates.length > 0 ? describeGgufs(candidates) : undefined };
}

/** Resolves `repoId[:quant]` at a revision: from the cache, else (online) downloaded into it. */
export async function resolveHubModel(req: HubModelRequest, ctx: HubFetchContext, id = hubModelId(req)): Promise<ResolvedModel> {
  const cached = await cachedHubModel(req, ctx);
  if (cached.path) return inspectLocalModel(cached.path, id);
  if (ctx.offline) throw await notCachedError(req, ctx, cached);
  const revision = req.revision ?? DEFAULT_REVISION;
  const listing = await listHubRepo(req.repoId, revision, ctx.hub);
  const plan = planModelFiles(req.repoId, listing.files, req.quant);
  const snapshot = await downloadToCache(req.repoId, revision, listing.commit, plan.files, ctx);
  return inspectLocalModel(modelPath(snapshot, plan), id);
}

/** The name clients see: the repo id, with the quant when one was named. */
export function hubModelId(req: HubModelRequest): string {
  return req.quant === undefined ? req.repoId : `${req.repoId}:${req.quant}`;
}

async function notCachedError(req: HubModelRequest, ctx: HubFetchContext, cached: CacheLookup): Promise<ModelSourceError> {
  const repoDir = hfRepoDir(ctx.hfCacheDir, req.repoId);
  const revisions = await describeCachedRevisions(repoDir);
  const at = req.revision === undefined ? '' : ` at revision "${req.revision}"`;
  return new ModelSourceError(
    'not_cached',
    `model: "${hubModelId(req)}"${at} is not in the Hugging Face cache (${repoDir}) and offline mode is on ` +
      `(HF_HUB_OFFLINE or --offline)` +
      (cached.incomplete ? `; the cached copy is incomplete: ${cached.incomplete}` : '') +
      (cached.cachedGgufs ? `; cached GGUF files: ${cached.cachedGgufs}` : '') +
      (revisions ? `; cached revisions: ${revisions}` : '') +
      `. Fetch it once with network access (this server or \`hf download ${req.repoId}\`), or pass a local path`,
  );
}

/**
 * Downloads the files that are missing from `snapshots/<commit>/` into blobs (a blob already
 * there, e.g. from another revision, is only linked) and records `refs/<revision>` last.
 */
async function downloadToCache(repoId: string, revision: string, commit: string, files: HubFile[], ctx: HubFetchContext): Promise<string> {
  const repoDir = hfRepoDir(ctx.hfCacheDir, repoId);
  const snapshot = snapshotDir(repoDir, commit);
  await mkdir(join(repoDir, 'blobs'), { recursive: true });
  for (const file of files) {
    const present = await stat(join(snapshot, ...file.name.split('/'))).catch(() => undefined);
    if (present?.isFile() && (file.size === undefined || present.size === file.size)) continue;
    const url = hubFileUrl(ctx.hub, repoId, commit, file.name);
    const options = {
      headers: hubHeaders(ctx.hub),
      connectTimeoutMs: ctx.hub.connectTimeoutMs,
      startProgress: (total: number | undefined) => startProgress(ctx.progress, 'download', file.name, file.size ?? total),
    };
    // The cache names a blob by its LFS sha256, else by its git blob id.
    const etag = file.sha256 ?? file.gitBlobId;
    // Only a hub (or mirror) that leaves both out gets here: name the blob once it is downloaded.
    const lockName = etag ?? `unnamed-${commit}-${file.name.replaceAll('/', '--')}`;
    await withCacheLock(blobLockTarget(ctx.hfCacheDir, repoId, lockName), async () => {
      if (etag === undefined) {
        const temp = blobPath(repoDir, `.${lockName}`);
        await downloadFile(url, temp, { size: file.size }, options);
        const named = await gitBlobIdOfFile(temp);
        await rename(temp, blobPath(repoDir, named));
        await linkSnapshotFile(repoDir, commit, file.name, named);
        return;
      }
      const blob = await stat(blobPath(repoDir, etag)).catch(() => undefined);
      if (!blob?.isFile() || (file.size !== undefined && blob.size !== file.size)) {
        const expected = { size: file.size, sha256: file.sha256, gitBlobId: file.sha256 ? undefined : file.gitBlobId };
        await downloadFile(url, blobPath(repoDir, etag), expected, options);
      }
      await linkSnapshotFile(repoDir, commit, file.name, etag);
    });
  }
  await writeRef(repoDir, revision, commit);
  return snapshot;
}

/** Written by versions before the shared cache once a repo was complete in <cache dir>/hub/<org>--<name>. */
export const LEGACY_COMPLETE_MARKER = '.mlx-batch-server-complete.json';

/** A repo an earlier version fetched into our own cache, when complete: used rather than fetched again. */
async function legacyCachedModel(cacheDir: string, repoId: string): Promise<string | undefined> {
  const dir = legacyHubRepoDir(cacheDir, repoId);
  let marker: { files?: HubFile[] };
  try {
    marker = JSON.parse(await readFile(join(dir, LEGACY_COMPLETE_MARKER), 'utf8')) as typeof marker;
  } catch {
    return undefined;
  }
  for (const file of marker.files ?? []) {
    const info = await stat(join(dir, file.name)).catch(() => undefined);
    if (!info?.isFile() || (file.size !== undefined && info.size !== file.size)) return undefined;
  }
  return dir;
}
