// The two Hugging Face hub calls this server makes: list a model repo's files (with sizes and
// LFS sha256s) and build a file's download URL. Honours HF_ENDPOINT (mirrors) and HF_TOKEN
// (gated or private repos), like huggingface_hub. Any failure to get an answer at all (refused,
// DNS, timeout) is reported as hub_unreachable, so callers can fall back or explain.
import { ModelSourceError } from './errors.ts';

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
}

export interface HubRepoListing {
  repoId: string;
  /** The commit the listing describes; downloads use it so all files come from one commit. */
  revision: string;
  files: HubFile[];
}

export function hubSettingsFromEnv(env: NodeJS.ProcessEnv, connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS): HubSettings {
  const endpoint = (env.HF_ENDPOINT || DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');
  return { endpoint, token: env.HF_TOKEN || undefined, connectTimeoutMs };
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
    hint = ' (no such repo or file)';
  }
  return new ModelSourceError('hub_error', `model: the Hugging Face hub answered ${status} for ${what} of "${repoId}"${hint}`);
}

interface ApiSibling {
  rfilename?: unknown;
  size?: unknown;
  lfs?: { sha256?: unknown; size?: unknown };
}

export async function listHubRepo(repoId: string, settings: HubSettings): Promise<HubRepoListing> {
  // blobs=true adds each file's size and LFS sha256 (huggingface_hub's files_metadata=True).
  const url = `${settings.endpoint}/api/models/${repoId}?blobs=true`;
  let response: Response;
  try {
    response = await fetchWithConnectTimeout(url, { headers: hubHeaders(settings) }, settings.connectTimeoutMs);
  } catch (err) {
    throw hubUnreachableError(settings, repoId, err);
  }
  if (!response.ok) throw hubHttpError(settings, repoId, 'the file list', response.status);
  let body: { sha?: unknown; siblings?: unknown };
  try {
    body = (await response.json()) as typeof body;
  } catch (err) {
    throw new ModelSourceError('hub_error', `model: the hub's file list for "${repoId}" is not JSON`, { cause: err });
  }
  if (!Array.isArray(body.siblings)) {
    throw new ModelSourceError('hub_error', `model: the hub's answer for "${repoId}" has no file list (siblings)`);
  }
  return {
    repoId,
    revision: typeof body.sha === 'string' && /^[0-9a-f]{40}$/.test(body.sha) ? body.sha : 'main',
    files: (body.siblings as ApiSibling[]).flatMap(toHubFile),
  };
}

function toHubFile(sibling: ApiSibling): HubFile[] {
  if (typeof sibling?.rfilename !== 'string') return [];
  const lfsSha = sibling.lfs?.sha256;
  const size = typeof sibling.lfs?.size === 'number' ? sibling.lfs.size : sibling.size;
  return [
    {
      name: sibling.rfilename,
      size: typeof size === 'number' ? size : undefined,
      sha256: typeof lfsSha === 'string' && /^[0-9a-f]{64}$/i.test(lfsSha) ? lfsSha.toLowerCase() : undefined,
    },
  ];
}
