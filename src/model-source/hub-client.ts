// The two Hugging Face hub calls this server makes: list a model repo's files at a revision
// (with the commit it resolves to, sizes, LFS sha256s and git blob ids) and build a file's
// download URL. Honours HF_ENDPOINT (mirrors) and the token huggingface_hub uses for gated or
// private repos (HF_TOKEN, or the file `huggingface-cli login` writes). Any failure to get an
// answer at all (refused, DNS, timeout) is reported as hub_unreachable, so callers can fall back
// or explain.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelSourceError } from './errors.ts';
import { hfHomeDir } from './hf-cache.ts';
import { expandHome } from './model-spec.ts';

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';
/** How long to wait for the hub's response headers before calling it unreachable. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

export interface HubSettings {
  endpoint: string;
  token?: string;
  connectTimeoutMs: number;
}

export interface HubFile {
  /** Path inside the repo, e.g. "model.safetensors". */
  name: string;
  size?: number;
  /** The LFS object id (sha256 of the content) for files stored in LFS. */
  sha256?: string;
  /** The git blob id (sha1 of "blob <size>\0" + content): what the cache names a non-LFS file by. */
  gitBlobId?: string;
}

export interface HubRepoListing {
  repoId: string;
  /** The commit the revision resolves to; downloads use it so all files come from one commit. */
  commit: string;
  files: HubFile[];
}

/** HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN), else the token file at $HF_TOKEN_PATH or <HF home>/token. */
export function hubTokenFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  const fromEnv = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (fromEnv) return fromEnv.trim() || undefined;
  const path = env.HF_TOKEN_PATH ? expandHome(env.HF_TOKEN_PATH) : join(hfHomeDir(env), 'token');
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export function hubSettingsFromEnv(env: NodeJS.ProcessEnv, connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS): HubSettings {
  const endpoint = (env.HF_ENDPOINT || DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');
  return { endpoint, token: hubTokenFromEnv(env), connectTimeoutMs };
}

export function hubHeaders(settings: HubSettings): Record<string, string> {
  return settings.token ? { authorization: `Bearer ${settings.token}` } : {};
}

export function hubFileUrl(settings: HubSettings, repoId: string, revision: string, file: string): string {
  const path = file.split('/').map(encodeURIComponent).join('/');
  return `${settings.endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${path}`;
}

/**
 * fetch() that gives up when the response headers have not arrived within `timeoutMs`; the body
 * is then read without that limit. `controller` lets the caller abort the body read later.
 */
export async function fetchWithConnectTimeout(
  url: string,
  init: RequestInit,
  timeoutMs: number,
  controller = new AbortController(),
): Promise<Response> {
  const timer = setTimeout(() => controller.abort(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
  try {
    return await fetch(url, { ...init, signal: controller.signal });
  } finally {
    clearTimeout(timer);
  }
}

/** A readable reason for a failed fetch(): undici hides the socket error in `cause`. */
export function networkErrorReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  if (cause?.code) return cause.code;
  if (cause?.message) return cause.message;
  return (err as Error)?.message ?? String(err);
}

export function hubUnreachableError(settings: HubSettings, repoId: string, err: unknown): ModelSourceError {
  return new ModelSourceError(
    'hub_unreachable',
    `model: cannot reach the Hugging Face hub at ${settings.endpoint} (${networkErrorReason(err)}) to fetch ` +
      `"${repoId}". Download the model where the hub is reachable and pass its local path instead: ` +
      `--model /path/to/model.gguf, or --model /path/to/dir (config.json, *.safetensors, tokenizer.json). ` +
      `HF_ENDPOINT selects a hub mirror.`,
    { cause: err },
  );
}

/** Turns a non-2xx hub answer into an error that says what to do about it. */
export function hubHttpError(settings: HubSettings, repoId: string, what: string, status: number): ModelSourceError {
  let hint = '';
  if (status === 401 || status === 403) {
    hint = settings.token
      ? ' (the repo is gated or private and HF_TOKEN has no access to it, or it does not exist)'
      : ' (the repo does not exist, or it is gated or private: set HF_TOKEN)';
  } else if (status === 404) {
    hint = ' (no such repo, revision or file)';
  }
  return new ModelSourceError('hub_error', `model: the Hugging Face hub answered ${status} for ${what} of "${repoId}"${hint}`);
}

interface ApiSibling {
  rfilename?: unknown;
  size?: unknown;
  blobId?: unknown;
  lfs?: { sha256?: unknown; size?: unknown };
}

/** The repo's files at `revision` (a branch, tag or commit) and the commit it resolves to. */
export async function listHubRepo(repoId: string, revision: string, settings: HubSettings): Promise<HubRepoListing> {
  // blobs=true adds each file's size, git blob id and LFS sha256 (huggingface_hub's files_metadata=True).
  const url = `${settings.endpoint}/api/models/${repoId}/revision/${encodeURIComponent(revision)}?blobs=true`;
  let response: Response;
  try {
    response = await fetchWithConnectTimeout(url, { headers: hubHeaders(settings) }, settings.connectTimeoutMs);
  } catch (err) {
    throw hubUnreachableError(settings, repoId, err);
  }
  if (!response.ok) throw hubHttpError(settings, repoId, `the file list at revision "${revision}"`, response.status);
  let body: { sha?: unknown; siblings?: unknown };
  try {
    body = (await response.json()) as typeof body;
  } catch (err) {
    throw new ModelSourceError('hub_error', `model: the hub's file list for "${repoId}" is not JSON`, { cause: err });
  }
  if (!Array.isArray(body.siblings)) {
    throw new ModelSourceError('hub_error', `model: the hub's answer for "${repoId}" has no file list (siblings)`);
  }
  // The cache files snapshots by commit: an answer without one cannot be stored.
  if (typeof body.sha !== 'string' || !/^[0-9a-f]{40}$/.test(body.sha)) {
    throw new ModelSourceError('hub_error', `model: the hub's answer for "${repoId}" at revision "${revision}" names no commit (sha)`);
  }
  return { repoId, commit: body.sha, files: (body.siblings as ApiSibling[]).flatMap(toHubFile) };
}

/**
 * Whether a repo path stays inside the folder it is joined onto: no absolute, drive or UNC path,
 * no `.`, `..` or empty part, no backslash (huggingface_hub's _validate_relative_filename rule). A
 * listing from a malicious hub or mirror could otherwise write outside the cache.
 */
export function isSafeRepoPath(path: string): boolean {
  return !/[\\:]/.test(path) && path.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

function toHubFile(sibling: ApiSibling): HubFile[] {
  if (typeof sibling?.rfilename !== 'string' || !isSafeRepoPath(sibling.rfilename)) return [];
  const lfsSha = sibling.lfs?.sha256;
  const size = typeof sibling.lfs?.size === 'number' ? sibling.lfs.size : sibling.size;
  return [
    {
      name: sibling.rfilename,
      size: typeof size === 'number' ? size : undefined,
      sha256: typeof lfsSha === 'string' && /^[0-9a-f]{64}$/i.test(lfsSha) ? lfsSha.toLowerCase() : undefined,
      gitBlobId: typeof sibling.blobId === 'string' && /^[0-9a-f]{40}$/i.test(sibling.blobId) ? sibling.blobId.toLowerCase() : undefined,
    },
  ];
}
