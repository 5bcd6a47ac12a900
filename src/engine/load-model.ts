// Turns a resolved model (a GGUF file or a Hugging Face / MLX directory) into what the engine runs:
// its configuration and the backend that computes it. (The tokenizer is the server's: src/text.) On a CPU the native kernels
// run it where they are built and support the checkpoint; MLX runs it otherwise (and on Metal).
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { EngineBackend } from './engine-backend.ts';
import type { EngineModel } from './engine-core.ts';
import type { ModelLocation } from './engine-protocol.ts';
import type { CpuKernels, Dtype, EngineOptions, QuantizationMode } from './engine-options.ts';
import { readGguf, type GgufFile } from './gguf.ts';
import { architectureForGguf, architectureForHf } from './model/architectures/registry.ts';
import { configFromHf, UnsupportedModelError, validateConfig, type ModelConfig } from './model/config.ts';
import { ggufF32Tensor } from './model/gguf-tensors.ts';
import { convertedGgufPath, loadGgufTransformer, loadHfTransformer } from './model/load-weights.ts';
import { readSafetensors, type RawTensor } from './model/safetensors-reader.ts';
import type { Transformer } from './model/transformer.ts';
import { renameGgufTensors, weightBytes } from './model/weights.ts';
import { cpuKernels, nativeKernelsUnavailable } from './native/cpu-kernels.ts';
import { NativeBackend } from './native/native-backend.ts';
import { NativeTransformer } from './native/native-transformer.ts';
import { buildNativeModel } from './native/native-weights.ts';
import { CpuSampler } from './sampler/cpu-sampler.ts';
import { describePrecision, resolveWeightPrecision, type ComputeDevice, type WeightPrecision } from './weight-precision.ts';

export type { ModelLocation } from './engine-protocol.ts';

export interface LoadedModel extends EngineModel {
  /** What computes the model: the native CPU kernels (and which variant), or MLX. */
  runtime: string;
  /** Why MLX runs a model on the CPU although the native kernels were asked for. */
  fallbackReason?: string;
  /** Bytes the weights occupy in memory. */
  weightBytes: number;
  /** How the weights are held (--quantization, --dtype), for the startup log. */
  precision: string;
  /** Why that choice is slow on this device (--quantization keep on MLX's CPU backend). */
  precisionWarning?: string;
  /** The MLX transformer, on the MLX path. */
  transformer?: Transformer;
  /** The native model, on the native path. */
  native?: NativeTransformer;
  /**
   * Whether memory is only returned when JS handles are garbage collected (MLX arrays): the
   * engine process then collects after every step. The native path frees its memory itself.
   */
  freesMemoryOnGc: boolean;
}

export interface ModelLoadOptions {
  /** Where converted weights are kept between starts. */
  cacheDir: string;
  onProgress?: (done: number, total: number) => void;
  /** The CPU implementation wanted (default native). */
  cpuKernels?: CpuKernels;
  /** Threads for the native kernels; 0 or absent: one per core. */
  threads?: number;
  /** Dtype of float weights and activations (default auto). */
  dtype?: Dtype;
  /** Keep or dequantize quantized weights (default auto: kept where that is at least as fast). */
  quantization?: QuantizationMode;
}

export async function loadModel(loc: ModelLocation, opts: ModelLoadOptions): Promise<LoadedModel> {
  const gguf = loc.format === 'gguf' ? await readGguf(loc.path) : undefined;
  const precisionOn = (device: ComputeDevice) => resolveWeightPrecision(device, opts.dtype ?? 'auto', opts.quantization ?? 'auto');
  let fallbackReason: string | undefined;
  if ((opts.cpuKernels ?? 'native') === 'native') {
    fallbackReason = await nativeUnsupportedReason();
    if (!fallbackReason) {
      try {
        return loadNative(loc, gguf, opts, precisionOn('native'));
      } catch (e) {
        if (!(e instanceof UnsupportedModelError)) throw e;
        fallbackReason = e.message;
      }
    }
  }
  const { mx } = await import('./mlx.ts');
  const metal = mx.defaultDevice().type === mx.gpu;
  const precision = precisionOn(metal ? 'mlx-metal' : 'mlx-cpu');
  const weightOpts = {
    keepQuantized: precision.keepQuantized,
    dtype: precision.dtype === 'checkpoint' ? ('checkpoint' as const) : mx[precision.dtype],
    onProgress: opts.onProgress,
  };
  const transformer = gguf
    ? loadGgufTransformer(gguf, ggufVocabSize(gguf), join(opts.cacheDir, 'converted'), weightOpts)
    : loadHfTransformer(loc.path, weightOpts);
  const { MlxBackend } = await import('./mlx-backend.ts');
  return {
    id: loc.id,
    config: transformer.config,
    transformer,
    runtime: metal ? 'mlx (metal)' : `mlx (cpu, ${process.env.OPENBLAS_NUM_THREADS ?? availableParallelism()} BLAS threads)`,
    fallbackReason,
    weightBytes: weightBytes(transformer.weights),
    precision: `${describePrecision(precision, opts.quantization ?? 'auto')}${precision.dtype === 'checkpoint' ? ` (${String(transformer.weights.finalNorm.dtype)})` : ''}`,
    precisionWarning: precision.warning,
    freesMemoryOnGc: true,
    createBackend: (engineOpts: EngineOptions): EngineBackend => new MlxBackend(transformer, engineOpts),
  };
}

/** Why the native kernels cannot run here, or undefined when they can. */
async function nativeUnsupportedReason(): Promise<string | undefined> {
  const unavailable = nativeKernelsUnavailable();
  if (unavailable) return unavailable;
  const { mx } = await import('./mlx.ts');
  if (mx.defaultDevice().type === mx.gpu) return 'MLX runs on the GPU here';
  return undefined;
}

function loadNative(loc: ModelLocation, gguf: GgufFile | undefined, opts: ModelLoadOptions, precision: WeightPrecision): LoadedModel {
  let config: ModelConfig;
  let tensors: Map<string, RawTensor>;
  let ggufPermuted = false;
  if (gguf) {
    const architecture = architectureForGguf(gguf.metadata);
    const converted = convertedGgufPath(gguf, join(opts.cacheDir, 'converted'));
    tensors = new Map(Object.entries(renameGgufTensors(Object.fromEntries(readSafetensors(converted)), architecture.ggufLayerNames)));
    config = architecture.configFromGguf(gguf.metadata, ggufVocabSize(gguf), tensors.has('lm_head.weight'), (name) =>
      ggufF32Tensor(gguf, name),
    );
    ggufPermuted = architecture.ggufPermutesQk;
  } else {
    const raw = JSON.parse(readFileSync(join(loc.path, 'config.json'), 'utf8')) as Record<string, unknown>;
    config = configFromHf(raw);
    const rename = architectureForHf(raw).hfTensorName;
    tensors = new Map();
    const files = readdirSync(loc.path)
      .filter((f) => f.endsWith('.safetensors'))
      .sort();
    if (files.length === 0) throw new UnsupportedModelError(`no .safetensors files in ${loc.path}`);
    for (const f of files) {
      for (const [name, t] of readSafetensors(join(loc.path, f))) {
        const mapped = rename ? rename(name) : name;
        if (mapped !== undefined) tensors.set(mapped, t);
      }
    }
  }
  validateConfig(config);
  const addon = cpuKernels()!;
  const threads = opts.threads && opts.threads > 0 ? opts.threads : availableParallelism();
  const { handle, info } = buildNativeModel(addon, tensors, config, {
    threads,
    ggufPermuted,
    dequantize: !precision.keepQuantized,
    onProgress: opts.onProgress,
  });
  const native = new NativeTransformer(config, addon, handle, info);
  return {
    id: loc.id,
    config,
    native,
    runtime: `native (${info.kernels}, ${info.threads} threads)`,
    weightBytes: info.weightBytes,
    precision: describePrecision(precision, opts.quantization ?? 'auto'),
    freesMemoryOnGc: false,
    createBackend: (engineOpts: EngineOptions) => new NativeBackend(native, new CpuSampler(config.vocabSize), engineOpts),
  };
}

/** Tokens of a GGUF's vocabulary (headers often omit `<arch>.vocab_size`). */
function ggufVocabSize(gguf: GgufFile): number {
  const tokens = gguf.metadata['tokenizer.ggml.tokens'];
  if (!Array.isArray(tokens) || tokens.length === 0) throw new UnsupportedModelError('the GGUF file has no tokenizer.ggml.tokens');
  return tokens.length;
}
