// Checks that a local path holds a model this server can load and says which format it is:
// a GGUF file, or a directory in Hugging Face layout (MLX-quantized checkpoints use the same
// layout). Checks only what can be checked cheaply, so a bad path fails at start-up with a
// message naming the missing piece instead of deep inside the loader.
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ModelSourceError } from './errors.ts';

export type ModelFormat = 'gguf' | 'hf';

export interface ResolvedModel {
  /** The name to show clients, e.g. "SmolLM2-135M-Instruct". */
  id: string;
  format: ModelFormat;
  /** The GGUF file, or the Hugging Face-layout directory. */
  path: string;
}

const GGUF_MAGIC = 'GGUF';
const SAFETENSORS_INDEX = 'model.safetensors.index.json';
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];

/** The name a model file or directory is shown under: its base name without `.gguf`. */
export function modelIdFromPath(path: string): string {
  return basename(path).replace(/\.gguf$/i, '');
}

export async function inspectLocalModel(path: string, id = modelIdFromPath(path)): Promise<ResolvedModel> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw new ModelSourceError('not_found', `model: cannot read ${path}: ${err.code ?? err.message}`, { cause: err });
  });
  if (info.isDirectory()) {
    await checkHuggingFaceDirectory(path);
    return { id, format: 'hf', path };
  }
  if (info.isFile()) {
    await checkGgufFile(path);
    return { id, format: 'gguf', path };
  }
  throw new ModelSourceError('invalid_model', `model: ${path} is neither a file nor a directory`);
}

async function checkGgufFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const magic = Buffer.alloc(4);
    const { bytesRead } = await handle.read(magic, 0, 4, 0);
    if (bytesRead < 4 || magic.toString('latin1') !== GGUF_MAGIC) {
      throw new ModelSourceError(
        'invalid_model',
        `model: ${path} is not a GGUF file (it does not start with "GGUF"); pass a .gguf file or a ` +
          `directory with config.json and *.safetensors`,
      );
    }
  } finally {
    await handle.close();
  }
}

async function checkHuggingFaceDirectory(dir: string): Promise<void> {
  const names = new Set(await readdir(dir));
  const missing = (what: string) =>
    new ModelSourceError('invalid_model', `model: directory ${dir} has no ${what} (expected Hugging Face or MLX layout)`);
  if (!names.has('config.json')) throw missing('config.json');
  await readJson(join(dir, 'config.json'));
  if (![...names].some((name) => name.endsWith('.safetensors'))) throw missing('*.safetensors weights');
  if (!TOKENIZER_FILES.some((name) => names.has(name))) throw missing(TOKENIZER_FILES.join(' or '));
  if (names.has(SAFETENSORS_INDEX)) {
    const shards = shardFiles(await readJson(join(dir, SAFETENSORS_INDEX)), join(dir, SAFETENSORS_INDEX));
    const absent = shards.filter((shard) => !names.has(shard));
    if (absent.length > 0) throw missing(`weight shard(s) listed in ${SAFETENSORS_INDEX}: ${absent.join(', ')}`);
  }
}

/** The distinct shard file names an index's weight_map points to. */
function shardFiles(index: unknown, where: string): string[] {
  const weightMap = (index as { weight_map?: unknown })?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null) {
    throw new ModelSourceError('invalid_model', `model: ${where} has no weight_map object`);
  }
  return [...new Set(Object.values(weightMap as Record<string, unknown>).map(String))];
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new ModelSourceError('invalid_model', `model: ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}
