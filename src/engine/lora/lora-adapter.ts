// Reads a LoRA adapter directory, as mlx-lm (`mlx_lm.lora`) or PEFT (`save_pretrained`) writes it,
// checks it against the base model it is meant for, and normalizes both into one shape: for each
// (layer, projection) A [r, in] and B [out, r] as f32 and the scale, so that the adapted weight is
// W + scale · B · A (merged-weight.ts). Dropout is a training matter and is ignored.
//
//   mlx-lm: adapters.safetensors + adapter_config.json (vars of mlx_lm.lora's arguments):
//     lora_parameters {rank, scale, dropout, keys?}, num_layers (the last N layers get LoRA),
//     tensors model.layers.N.self_attn.q_proj.lora_a [in, r] and .lora_b [r, out]; `scale` is the
//     multiplier itself (mlx-lm refuses a config with only `alpha`, and so do we).
//   PEFT: adapter_model.safetensors + adapter_config.json: r, lora_alpha, target_modules,
//     use_rslora (scale lora_alpha / sqrt(r), else lora_alpha / r), tensors
//     base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight [r, in] and lora_B.weight [out, r].
//     fan_in_fan_out only says how PEFT adds the delta to a transposed (GPT-2 Conv1D) base weight;
//     A and B are [r, in] and [out, r] either way, and every family here has [out, in] weights.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from '../model/config.ts';
import { floatValues, type RawTensor, readSafetensors } from '../model/safetensors-reader.ts';
import { LoraAdapterError } from './lora-adapter-error.ts';

/** The projections of a decoder layer a LoRA adapter may change, in the order adapters are listed. */
export const LORA_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraModule = (typeof LORA_MODULES)[number];

/** Where each projection sits in a layer, as the checkpoints (and weights.ts) name it. */
export const LORA_MODULE_PATHS: Readonly<Record<LoraModule, string>> = {
  q_proj: 'self_attn.q_proj',
  k_proj: 'self_attn.k_proj',
  v_proj: 'self_attn.v_proj',
  o_proj: 'self_attn.o_proj',
  gate_proj: 'mlp.gate_proj',
  up_proj: 'mlp.up_proj',
  down_proj: 'mlp.down_proj',
};

/** Phi-3's fused projections: a LoRA on them would have to be split across q|k|v or gate|up first. */
const FUSED_MODULE_PATHS = ['self_attn.qkv_proj', 'mlp.gate_up_proj'];

/** The base model an adapter is checked against. */
export interface LoraBaseModel {
  config: Pick<ModelConfig, 'numLayers' | 'hiddenSize' | 'numHeads' | 'numKvHeads' | 'headDim' | 'intermediateSize'>;
  /** The projections each layer has, by path in the layer (self_attn.q_proj, ..., Phi-3's self_attn.qkv_proj). */
  modules: readonly string[];
}

export interface LoraLimits {
  /** The largest rank served (the batched kernels size their scratch by it). */
  maxRank: number;
}

/** One adapted projection: the weight becomes W + scale · B · A. */
export interface LoraModuleWeights {
  layer: number;
  module: LoraModule;
  rank: number;
  inFeatures: number;
  outFeatures: number;
  /** [rank, inFeatures] row-major. */
  a: Float32Array;
  /** [outFeatures, rank] row-major. */
  b: Float32Array;
  scale: number;
}

export interface LoraAdapter {
  format: 'mlx-lm' | 'peft';
  dir: string;
  rank: number;
  scale: number;
  /** Sorted by layer, then in LORA_MODULES order. */
  modules: LoraModuleWeights[];
}

/** The projections of a layer for a ModelConfig: every family's seven, Phi-3's fused four. */
export function layerModulePaths(config: Pick<ModelConfig, 'architecture'>): string[] {
  return config.architecture === 'phi3'
    ? ['self_attn.qkv_proj', 'self_attn.o_proj', 'mlp.gate_up_proj', 'mlp.down_proj']
    : Object.values(LORA_MODULE_PATHS);
}

export const MLX_WEIGHTS = 'adapters.safetensors';
export const PEFT_WEIGHTS = 'adapter_model.safetensors';
export const ADAPTER_CONFIG = 'adapter_config.json';

/** Reads and checks the adapter in `dir` (mlx-lm's or PEFT's, told apart by the weights file's name). */
export function readLoraAdapter(dir: string, model: LoraBaseModel, limits: LoraLimits): LoraAdapter {
  if (!existsSync(dir)) throw new LoraAdapterError('adapter directory does not exist', dir);
  if (!statSync(dir).isDirectory())
    throw new LoraAdapterError(`is not a directory (an adapter is the directory holding ${ADAPTER_CONFIG})`, dir);
  const format = existsSync(join(dir, MLX_WEIGHTS)) ? 'mlx-lm' : existsSync(join(dir, PEFT_WEIGHTS)) ? 'peft' : undefined;
  if (!format) throw new LoraAdapterError(`has neither ${MLX_WEIGHTS} (mlx-lm) nor ${PEFT_WEIGHTS} (PEFT)`, dir);
  const configFile = join(dir, ADAPTER_CONFIG);
  const config = readConfig(configFile, dir);
  const weightsFile = join(dir, format === 'mlx-lm' ? MLX_WEIGHTS : PEFT_WEIGHTS);
  const header = format === 'mlx-lm' ? mlxHeader(config, configFile, model) : peftHeader(config, configFile, model);
  if (header.rank > limits.maxRank) {
    throw new LoraAdapterError(`rank ${header.rank} is above the largest served (${limits.maxRank})`, configFile, header.rankField);
  }
  let tensors: Map<string, RawTensor>;
  try {
    tensors = readSafetensors(weightsFile);
  } catch (e) {
    throw new LoraAdapterError((e as Error).message, weightsFile);
  }
  const modules = readModules(tensors, weightsFile, format, header, model);
  return { format, dir, rank: header.rank, scale: header.scale, modules };
}

/** What a config says about the tensors to expect. */
interface AdapterHeader {
  rank: number;
  rankField: string;
  scale: number;
  /** The projections the config targets; undefined when it cannot say (a PEFT regex). */
  targets?: Set<LoraModule>;
  targetsField: string;
  /** The first layer that may carry LoRA tensors (mlx-lm's last num_layers). */
  firstLayer: number;
}

function readConfig(file: string, dir: string): Record<string, unknown> {
  if (!existsSync(file)) throw new LoraAdapterError(`is missing (the adapter's configuration)`, dir, ADAPTER_CONFIG);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new LoraAdapterError(`is not valid JSON (${(e as Error).message})`, file);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new LoraAdapterError('is not a JSON object', file);
  return raw as Record<string, unknown>;
}

function positiveInteger(value: unknown, file: string, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new LoraAdapterError(`must be a positive integer, got ${JSON.stringify(value)}`, file, field);
  }
  return value;
}

function finiteNumber(value: unknown, file: string, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new LoraAdapterError(`must be a number, got ${JSON.stringify(value)}`, file, field);
  }
  return value;
}

/** Module short name of a target (q_proj, self_attn.q_proj, model.layers.0.self_attn.q_proj → q_proj). */
function targetModule(target: string, model: LoraBaseModel, file: string, field: string): LoraModule {
  const short = target.split('.').at(-1) ?? target;
  if (short === 'embed_tokens' || short === 'lm_head') {
    throw new LoraAdapterError(`targets ${target}: LoRA on the embedding or the LM head is not supported`, file, field);
  }
  const fused = FUSED_MODULE_PATHS.find((p) => p.endsWith(`.${short}`));
  if (fused) {
    throw new LoraAdapterError(`targets ${target}: LoRA on fused projections (Phi-3's ${fused}) is not supported yet`, file, field);
  }
  const module = LORA_MODULES.find((m) => m === short);
  if (!module || !model.modules.includes(LORA_MODULE_PATHS[module])) {
    throw new LoraAdapterError(`targets ${target}, which the model does not have (it has ${model.modules.join(', ')})`, file, field);
  }
  return module;
}

function mlxHeader(config: Record<string, unknown>, file: string, model: LoraBaseModel): AdapterHeader {
  const type = config.fine_tune_type ?? 'lora';
  if (type !== 'lora') throw new LoraAdapterError(`"${String(type)}" is not supported (only "lora")`, file, 'fine_tune_type');
  const p = config.lora_parameters;
  if (typeof p !== 'object' || p === null || Array.isArray(p)) {
    throw new LoraAdapterError('must be an object {rank, scale, dropout, keys?}', file, 'lora_parameters');
  }
  const params = p as Record<string, unknown>;
  const rank = positiveInteger(params.rank, file, 'lora_parameters.rank');
  if (params.scale === undefined) {
    const hint = params.alpha !== undefined ? ` (mlx-lm's LoRA uses "scale", not "alpha")` : '';
    throw new LoraAdapterError(`is missing${hint}`, file, 'lora_parameters.scale');
  }
  const scale = finiteNumber(params.scale, file, 'lora_parameters.scale');
  const numLayers = config.num_layers;
  if (typeof numLayers !== 'number' || !Number.isInteger(numLayers)) {
    throw new LoraAdapterError(`must be an integer, got ${JSON.stringify(numLayers)}`, file, 'num_layers');
  }
  if (numLayers > model.config.numLayers) {
    throw new LoraAdapterError(`is ${numLayers}, but the model has ${model.config.numLayers} layers`, file, 'num_layers');
  }
  let targets: Set<LoraModule> | undefined;
  if (params.keys !== undefined && params.keys !== null) {
    if (!Array.isArray(params.keys) || !params.keys.every((k) => typeof k === 'string')) {
      throw new LoraAdapterError('must be a list of module paths', file, 'lora_parameters.keys');
    }
    targets = new Set(params.keys.map((k: string) => targetModule(k, model, file, 'lora_parameters.keys')));
  } else {
    // No keys: mlx-lm adapts every linear layer of the last num_layers layers.
    targets = new Set(LORA_MODULES.filter((m) => model.modules.includes(LORA_MODULE_PATHS[m])));
  }
  // mlx-lm slices model.layers[-max(num_layers, 0):]: 0 or below means every layer.
  const firstLayer = numLayers > 0 ? model.config.numLayers - numLayers : 0;
  return { rank, rankField: 'lora_parameters.rank', scale, targets, targetsField: 'lora_parameters.keys', firstLayer };
}

function peftHeader(config: Record<string, unknown>, file: string, model: LoraBaseModel): AdapterHeader {
  if (config.peft_type !== undefined && config.peft_type !== 'LORA') {
    throw new LoraAdapterError(`"${String(config.peft_type)}" is not supported (only "LORA")`, file, 'peft_type');
  }
  const refuse = (field: string, what: string) => {
    throw new LoraAdapterError(`${what} is not supported`, file, field);
  };
  if (config.use_dora === true) refuse('use_dora', 'DoRA');
  if (config.bias !== undefined && config.bias !== 'none') refuse('bias', 'training biases');
  if (config.lora_bias === true) refuse('lora_bias', 'a bias on lora_B');
  if (Array.isArray(config.modules_to_save) && config.modules_to_save.length > 0) {
    refuse('modules_to_save', 'fully trained modules beside the LoRA');
  }
  for (const field of ['rank_pattern', 'alpha_pattern']) {
    const v = config[field];
    if (v && typeof v === 'object' && Object.keys(v).length > 0) refuse(field, 'a per-module rank or alpha');
  }
  const rank = positiveInteger(config.r, file, 'r');
  const alpha = finiteNumber(config.lora_alpha, file, 'lora_alpha');
  const scale = config.use_rslora === true ? alpha / Math.sqrt(rank) : alpha / rank;
  const t = config.target_modules;
  let targets: Set<LoraModule> | undefined;
  if (Array.isArray(t)) {
    if (!t.every((x) => typeof x === 'string')) throw new LoraAdapterError('must be a list of module names', file, 'target_modules');
    targets = new Set(t.map((x: string) => targetModule(x, model, file, 'target_modules')));
  } else if (t === 'all-linear') {
    // PEFT's all-linear: every linear layer but the output head.
    targets = new Set(LORA_MODULES.filter((m) => model.modules.includes(LORA_MODULE_PATHS[m])));
  } else if (typeof t !== 'string') {
    throw new LoraAdapterError(`must be a list of module names or a pattern, got ${JSON.stringify(t)}`, file, 'target_modules');
  }
  // A pattern string: the tensors say which modules it matched.
  return { rank, rankField: 'r', scale, targets, targetsField: 'target_modules', firstLayer: 0 };
}

const MLX_TENSOR = /^model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.(lora_a|lora_b)$/;
const PEFT_TENSOR = /^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.(lora_A|lora_B)\.weight$/;

/** [in, out] of a projection in the base model. */
export function projectionShape(module: LoraModule, c: LoraBaseModel['config']): [number, number] {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  switch (module) {
    case 'q_proj':
      return [c.hiddenSize, q];
    case 'k_proj':
    case 'v_proj':
      return [c.hiddenSize, kv];
    case 'o_proj':
      return [q, c.hiddenSize];
    case 'gate_proj':
    case 'up_proj':
      return [c.hiddenSize, c.intermediateSize];
    case 'down_proj':
      return [c.intermediateSize, c.hiddenSize];
  }
}

function readModules(
  tensors: Map<string, RawTensor>,
  file: string,
  format: LoraAdapter['format'],
  header: AdapterHeader,
  model: LoraBaseModel,
): LoraModuleWeights[] {
  const pattern = format === 'mlx-lm' ? MLX_TENSOR : PEFT_TENSOR;
  const pairs = new Map<string, { layer: number; module: LoraModule; a?: string; b?: string }>();
  for (const name of tensors.keys()) {
    if (/embed_tokens|lm_head|lora_embedding/.test(name)) {
      throw new LoraAdapterError('LoRA on the embedding or the LM head is not supported', file, name);
    }
    const m = pattern.exec(name);
    if (!m) {
      const expected =
        format === 'mlx-lm' ? 'model.layers.N.<module>.lora_a|lora_b' : 'base_model.model.model.layers.N.<module>.lora_A|lora_B.weight';
      throw new LoraAdapterError(`is not a LoRA tensor of a decoder layer (expected ${expected})`, file, name);
    }
    const layer = Number(m[1]);
    const module = targetModule(`${m[2]}.${m[3]}`, model, file, name);
    if (`${m[2]}.${m[3]}` !== LORA_MODULE_PATHS[module]) {
      throw new LoraAdapterError(`is not where the model has ${module} (${LORA_MODULE_PATHS[module]})`, file, name);
    }
    if (layer >= model.config.numLayers) {
      throw new LoraAdapterError(`is in layer ${layer}, but the model has ${model.config.numLayers} layers`, file, name);
    }
    if (layer < header.firstLayer) {
      throw new LoraAdapterError(`is in layer ${layer}, outside the last num_layers layers (${header.firstLayer} on)`, file, name);
    }
    if (header.targets && !header.targets.has(module)) {
      throw new LoraAdapterError(`adapts ${module}, which ${header.targetsField} does not list`, file, name);
    }
    const key = `${layer}.${module}`;
    const pair = pairs.get(key) ?? { layer, module };
    if (m[4].toLowerCase() === 'lora_a') pair.a = name;
    else pair.b = name;
    pairs.set(key, pair);
  }
  if (pairs.size === 0) throw new LoraAdapterError('holds no LoRA tensors', file);

  const out: LoraModuleWeights[] = [];
  for (const { layer, module, a: aName, b: bName } of pairs.values()) {
    if (!aName || !bName) {
      const [have, missing] = aName ? [aName, 'B'] : [bName as string, 'A'];
      throw new LoraAdapterError(`has no matching LoRA ${missing} tensor`, file, have);
    }
    const [inF, outF] = projectionShape(module, model.config);
    const r = header.rank;
    const aT = tensors.get(aName) as RawTensor;
    const bT = tensors.get(bName) as RawTensor;
    let a: Float32Array;
    let b: Float32Array;
    if (format === 'mlx-lm') {
      // lora_a [in, r], lora_b [r, out]: x @ lora_a @ lora_b, so A = lora_aᵀ and B = lora_bᵀ.
      a = transpose(floats(aT, [inF, r], file, aName), inF, r);
      b = transpose(floats(bT, [r, outF], file, bName), r, outF);
    } else {
      a = floats(aT, [r, inF], file, aName);
      b = floats(bT, [outF, r], file, bName);
    }
    out.push({ layer, module, rank: r, inFeatures: inF, outFeatures: outF, a, b, scale: header.scale });
  }
  return out.sort((x, y) => x.layer - y.layer || LORA_MODULES.indexOf(x.module) - LORA_MODULES.indexOf(y.module));
}

/** A tensor's values as f32 after checking its shape; f16 and bf16 widen exactly. */
function floats(t: RawTensor, shape: number[], file: string, name: string): Float32Array {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new LoraAdapterError(`has shape [${t.shape}], expected [${shape}] for this model and rank`, file, name);
  }
  const n = shape.reduce((x, y) => x * y, 1);
  const width = t.dtype === 'F32' ? 4 : t.dtype === 'F16' || t.dtype === 'BF16' ? 2 : 0;
  if (!width) throw new LoraAdapterError(`has dtype ${t.dtype}; supported: F32, F16, BF16`, file, name);
  if (t.data.byteLength !== n * width) {
    throw new LoraAdapterError(`holds ${t.data.byteLength} bytes, expected ${n * width}`, file, name);
  }
  return floatValues(t);
}

function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(m.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j];
  return t;
}
