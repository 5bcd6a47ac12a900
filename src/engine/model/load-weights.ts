// Reads a checkpoint (Hugging Face / MLX directory, or GGUF file) into a ready Transformer.
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { mx, type MxArray } from '../mlx.ts';
import { basename, join } from 'node:path';
import type { GgufFile } from '../gguf.ts';
import { architectureForGguf, architectureForHf } from './architectures/registry.ts';
import { configFromHf, validateConfig } from './config.ts';
import { convertGgufTensors, ggufF32Tensor } from './gguf-tensors.ts';
import { writeSafetensors } from './safetensors-writer.ts';
import { Transformer } from './transformer.ts';
import { buildWeights, loadSafetensorsDirectory, renameGgufTensors, type LoadOptions, type MxDtype } from './weights.ts';

export interface WeightLoadOptions {
  /** Keep quantized weights quantized (Metal); defaults to true only when MLX runs on the GPU. */
  keepQuantized?: boolean;
  /** Dtype of float weights (default float32); `checkpoint`: the checkpoint's float16/bfloat16 (Metal). */
  dtype?: MxDtype | 'checkpoint';
  onProgress?: LoadOptions['onProgress'];
}

type TensorMap = Parameters<typeof buildWeights>[0];

/** The dtype to hold float weights in: as asked, or the checkpoint's (its embedding's, or its scales' when quantized). */
function weightDtype(tensors: TensorMap, dtype: WeightLoadOptions['dtype']): MxDtype {
  if (dtype === undefined) return mx.float32;
  if (dtype !== 'checkpoint') return dtype;
  const t = tensors['model.embed_tokens.scales'] ?? tensors['model.embed_tokens.weight'];
  return t && (t.dtype === mx.float16 || t.dtype === mx.bfloat16) ? t.dtype : mx.float32;
}

function defaultKeepQuantized(): boolean {
  return mx.defaultDevice().type === mx.gpu;
}

/** Loads config.json + *.safetensors from a Hugging Face or MLX-community directory. */
export function loadHfTransformer(dir: string, opts: WeightLoadOptions = {}): Transformer {
  const raw = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const config = configFromHf(raw);
  validateConfig(config);
  const tensors = loadSafetensorsDirectory(dir, architectureForHf(raw).hfTensorName);
  const weights = buildWeights(tensors, config, {
    keepQuantized: opts.keepQuantized ?? defaultKeepQuantized(),
    dtype: weightDtype(tensors, opts.dtype),
    onProgress: opts.onProgress,
    ggufPermuted: false,
  });
  return new Transformer(config, weights);
}

/**
 * The GGUF file's tensors as a safetensors file in MLX's layout (quantized blocks kept quantized,
 * as MLX affine quantization), converted on first use and kept in `cacheDir`.
 */
export function convertedGgufPath(gguf: GgufFile, cacheDir: string): string {
  const st = statSync(gguf.path);
  mkdirSync(cacheDir, { recursive: true });
  const converted = join(cacheDir, `${basename(gguf.path, '.gguf')}-${st.size}-${Math.floor(st.mtimeMs)}.mlx.safetensors`);
  if (!existsSync(converted)) writeSafetensors(converted, convertGgufTensors(gguf.path, gguf.tensors));
  return converted;
}

/**
 * Loads a GGUF model. Its tensors are converted once into a safetensors file in `cacheDir` (MLX
 * layout, quantized blocks kept quantized), which later starts load directly. `vocabSize` is the
 * tokenizer's size (GGUF headers often omit `<arch>.vocab_size`).
 */
export function loadGgufTransformer(gguf: GgufFile, vocabSize: number, cacheDir: string, opts: WeightLoadOptions = {}): Transformer {
  const architecture = architectureForGguf(gguf.metadata);
  const converted = convertedGgufPath(gguf, cacheDir);
  const tensors = renameGgufTensors(mx.load(converted) as unknown as Record<string, MxArray>, architecture.ggufLayerNames);
  const config = architecture.configFromGguf(gguf.metadata, vocabSize, 'lm_head.weight' in tensors, (name) => ggufF32Tensor(gguf, name));
  validateConfig(config);
  const weights = buildWeights(tensors, config, {
    keepQuantized: opts.keepQuantized ?? defaultKeepQuantized(),
    dtype: weightDtype(tensors, opts.dtype),
    onProgress: opts.onProgress,
    ggufPermuted: architecture.ggufPermutesQk,
  });
  return new Transformer(config, weights);
}
