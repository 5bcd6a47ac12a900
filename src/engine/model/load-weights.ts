// Reads a checkpoint (Hugging Face / MLX directory, or GGUF file) into a ready Transformer.
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { mx, type MxArray } from '../mlx.ts';
import { basename, join } from 'node:path';
import type { GgufFile } from '../gguf.ts';
import { architectureForGguf, architectureForHf } from './architectures/registry.ts';
import { configFromHf, validateConfig } from './config.ts';
import { convertGgufTensors } from './gguf-tensors.ts';
import { writeSafetensors } from './safetensors-writer.ts';
import { Transformer } from './transformer.ts';
import { buildWeights, loadSafetensorsDirectory, renameGgufTensors, type LoadOptions } from './weights.ts';

export interface WeightLoadOptions {
  /** Keep quantized weights quantized (Metal); defaults to true only when MLX runs on the GPU. */
  keepQuantized?: boolean;
  onProgress?: LoadOptions['onProgress'];
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
  const config = architecture.configFromGguf(gguf.metadata, vocabSize, 'lm_head.weight' in tensors);
  validateConfig(config);
  const weights = buildWeights(tensors, config, {
    keepQuantized: opts.keepQuantized ?? defaultKeepQuantized(),
    onProgress: opts.onProgress,
    ggufPermuted: architecture.ggufPermutesQk,
  });
  return new Transformer(config, weights);
}
