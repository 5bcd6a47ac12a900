// Exports a model as this server loads it into a Hugging Face-layout directory, so that other
// servers (mlx_lm, transformers, llama.cpp's converter) run exactly the weights we run:
//   config.json             hyperparameters as our loader read them
//   generation_config.json  the ids that end generation
//   model.safetensors       float32, Hugging Face tensor names, q/k rows un-permuted (as our loader does for GGUF)
//   tokenizer.json          the tokenizer our engine encodes with (for a GGUF: built from its metadata)
//   tokenizer_config.json   special tokens and the chat template
// The weights are taken from the loaded model itself (the fused q|k|v and gate|up matrices split
// back), so what is exported is what is served.
//   node --import tsx scripts/export-hf.ts --out DIR [--model SPEC] [--cache-dir DIR]
import mlx from '@frost-beta/mlx';
import { Command } from 'commander';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readGguf } from '../src/engine/gguf.ts';
import type { ModelConfig } from '../src/engine/model/config.ts';
import { contiguous, type Linear } from '../src/engine/model/linear.ts';
import { loadGgufTransformer, loadHfTransformer } from '../src/engine/model/load-weights.ts';
import { architectureNamed } from '../src/engine/model/architectures/registry.ts';
import type { Transformer } from '../src/engine/model/transformer.ts';
import { defaultCacheDir, resolveModel } from '../src/model-source/model-source.ts';
import { tokenizerDefinitionFromGguf } from '../src/text/gguf-vocabulary.ts';
import { tokenizerDefinitionFromHfDirectory } from '../src/text/hf-directory.ts';
import type { TokenizerDefinition, TokenizerJson } from '../src/text/tokenizer-definition.ts';

const { core: mx } = mlx;
type MxArray = InstanceType<typeof mx.array>;

/** config.json in transformers' spelling of our ModelConfig. */
export function hfConfigJson(c: ModelConfig, def: TokenizerDefinition): Record<string, unknown> {
  let ropeScaling: Record<string, unknown> | null = null;
  if (c.ropeScaling?.type === 'linear') ropeScaling = { rope_type: 'linear', factor: c.ropeScaling.factor };
  else if (c.ropeScaling?.type === 'llama3') {
    ropeScaling = {
      rope_type: 'llama3',
      factor: c.ropeScaling.factor,
      low_freq_factor: c.ropeScaling.lowFreqFactor,
      high_freq_factor: c.ropeScaling.highFreqFactor,
      original_max_position_embeddings: c.ropeScaling.originalMaxPositionEmbeddings,
    };
  } else if (c.ropeScaling?.type === 'freqFactors') {
    throw new Error('RoPE scaling given as per-pair frequency factors (a GGUF rope_freqs tensor) has no config.json spelling');
  } else if (c.ropeScaling?.type === 'longrope') {
    // The attention factor written out: transformers would otherwise derive it from max_position_embeddings.
    ropeScaling = {
      rope_type: 'longrope',
      short_factor: c.ropeScaling.shortFactor,
      long_factor: c.ropeScaling.longFactor,
      attention_factor: c.ropeScaling.attentionFactor,
    };
  }
  return {
    architectures: [architectureNamed(c.architecture).hfClassName],
    model_type: c.architecture,
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    hidden_act: 'silu',
    // GGUF stores it as float32 (1e-5 reads back as 9.99999974e-6); write the decimal it stands for.
    rms_norm_eps: Number(c.rmsNormEps.toPrecision(7)),
    rope_theta: c.ropeTheta,
    rope_scaling: ropeScaling,
    max_position_embeddings: c.contextLength,
    ...(c.ropeScaling?.type === 'longrope' ? { original_max_position_embeddings: c.ropeScaling.originalMaxPositionEmbeddings } : {}),
    ...(c.rotaryDim !== undefined ? { partial_rotary_factor: c.rotaryDim / c.headDim } : {}),
    tie_word_embeddings: c.tieWordEmbeddings,
    // Qwen2's q/k/v biases are implied by its model_type; Llama states them.
    ...(c.architecture === 'llama' ? { attention_bias: c.attentionBias, mlp_bias: false } : {}),
    bos_token_id: def.bosTokenId ?? null,
    eos_token_id: eosIdField(def),
    torch_dtype: 'float32',
  };
}

function eosIdField(def: TokenizerDefinition): number | number[] | null {
  if (def.eosTokenIds.length === 0) return null;
  return def.eosTokenIds.length === 1 ? def.eosTokenIds[0] : def.eosTokenIds;
}

export function hfGenerationConfigJson(def: TokenizerDefinition): Record<string, unknown> {
  return { bos_token_id: def.bosTokenId ?? null, eos_token_id: eosIdField(def) };
}

/**
 * tokenizer.json as the `tokenizers` library reads it. Our definition omits what only that
 * library's parser needs: the top-level version/truncation/padding keys, and a TemplateProcessing
 * post-processor's table of the special tokens it inserts.
 */
export function hfTokenizerJson(def: TokenizerDefinition): TokenizerJson {
  const json = structuredClone(def.tokenizerJson);
  const idOf = new Map(json.added_tokens.map((t) => [t.content, t.id]));
  const post = json.post_processor as { type?: string; single?: Array<Record<string, { id: string }>> } | null;
  if (post?.type === 'TemplateProcessing') {
    const specialTokens: Record<string, unknown> = {};
    for (const piece of post.single ?? []) {
      const token = piece.SpecialToken?.id;
      if (token === undefined) continue;
      const id = idOf.get(token) ?? def.tokens.indexOf(token);
      if (id < 0) throw new Error(`the post-processor inserts ${JSON.stringify(token)}, which is not in the vocabulary`);
      specialTokens[token] = { id: token, ids: [id], tokens: [token] };
    }
    (json.post_processor as Record<string, unknown>).special_tokens = specialTokens;
  }
  return { version: '1.0', truncation: null, padding: null, ...json };
}

export function hfTokenizerConfigJson(def: TokenizerDefinition, contextLength: number): Record<string, unknown> {
  const addedTokensDecoder: Record<string, unknown> = {};
  for (const t of def.tokenizerJson.added_tokens) {
    addedTokensDecoder[String(t.id)] = {
      content: t.content,
      lstrip: t.lstrip ?? false,
      normalized: t.normalized ?? false,
      rstrip: t.rstrip ?? false,
      single_word: t.single_word ?? false,
      special: t.special,
    };
  }
  const { default: chatTemplate, ...namedTemplates } = def.chatTemplates;
  const templates = Object.keys(namedTemplates).length
    ? [
        { name: 'default', template: chatTemplate },
        ...Object.entries(namedTemplates).map(([name, template]) => ({ name, template })),
      ].filter((t) => t.template !== undefined)
    : chatTemplate;
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    added_tokens_decoder: addedTokensDecoder,
    ...def.templateTokens,
    clean_up_tokenization_spaces: false,
    model_max_length: contextLength,
    ...(templates !== undefined ? { chat_template: templates } : {}),
  };
}

/** A dense Linear stored [in, out] split along its outputs into checkpoint-layout [out_i, in] matrices. */
function splitDense(l: Linear, sizes: number[], what: string): { weights: MxArray[]; biases?: MxArray[] } {
  if (l.kind !== 'dense') throw new Error(`${what} is quantized; export loads weights as float32 (keepQuantized: false)`);
  const cuts = sizes.slice(0, -1).map((_, i) => sizes.slice(0, i + 1).reduce((a, b) => a + b, 0));
  const weights = (cuts.length ? mx.split(l.weight, cuts, 1) : [l.weight]).map((w) => contiguous(mx.transpose(w)));
  const biases = l.bias ? (cuts.length ? mx.split(l.bias, cuts, 0) : [l.bias]) : undefined;
  return { weights, biases };
}

/** The loaded weights under Hugging Face names, float32 [out, in]. */
export function hfTensors(t: Transformer): Record<string, MxArray> {
  const c = t.config;
  const w = t.weights;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  if (w.embed.kind !== 'dense') throw new Error('the embedding is quantized; export loads weights as float32 (keepQuantized: false)');
  const out: Record<string, MxArray> = { 'model.embed_tokens.weight': w.embed.table, 'model.norm.weight': w.finalNorm };
  w.layers.forEach((layer, i) => {
    const p = `model.layers.${i}`;
    // Phi-3 keeps q|k|v and gate|up fused in its checkpoints.
    const fused = c.architecture === 'phi3';
    const qkv = splitDense(layer.qkv, fused ? [q + 2 * kv] : [q, kv, kv], `${p} q|k|v`);
    (fused ? ['qkv_proj'] : ['q_proj', 'k_proj', 'v_proj']).forEach((name, j) => {
      out[`${p}.self_attn.${name}.weight`] = qkv.weights[j];
      if (qkv.biases) out[`${p}.self_attn.${name}.bias`] = qkv.biases[j];
    });
    out[`${p}.self_attn.o_proj.weight`] = splitDense(layer.o, [c.hiddenSize], `${p} o_proj`).weights[0];
    if (fused) out[`${p}.mlp.gate_up_proj.weight`] = splitDense(layer.gateUp, [2 * c.intermediateSize], `${p} gate|up`).weights[0];
    else {
      const gateUp = splitDense(layer.gateUp, [c.intermediateSize, c.intermediateSize], `${p} gate|up`);
      out[`${p}.mlp.gate_proj.weight`] = gateUp.weights[0];
      out[`${p}.mlp.up_proj.weight`] = gateUp.weights[1];
    }
    out[`${p}.mlp.down_proj.weight`] = splitDense(layer.down, [c.hiddenSize], `${p} down_proj`).weights[0];
    out[`${p}.input_layernorm.weight`] = layer.attnNorm;
    out[`${p}.post_attention_layernorm.weight`] = layer.mlpNorm;
    if (layer.qNorm) out[`${p}.self_attn.q_norm.weight`] = layer.qNorm;
    if (layer.kNorm) out[`${p}.self_attn.k_norm.weight`] = layer.kNorm;
  });
  if (!c.tieWordEmbeddings) out['lm_head.weight'] = splitDense(w.lmHead, [c.vocabSize], 'lm_head').weights[0];
  return out;
}

export interface ExportResult {
  id: string;
  outDir: string;
  config: ModelConfig;
  tensorCount: number;
}

/** Loads `spec` (a GGUF file, HF directory, hub id or undefined for the default model) and writes it to outDir. */
export async function exportHf(spec: string | undefined, outDir: string, cacheDir = defaultCacheDir()): Promise<ExportResult> {
  const location = await resolveModel(spec, { cacheDir });
  let def: TokenizerDefinition;
  let transformer: Transformer;
  if (location.format === 'gguf') {
    const gguf = await readGguf(location.path);
    def = tokenizerDefinitionFromGguf(gguf.metadata);
    transformer = loadGgufTransformer(gguf, def.tokens.length, join(cacheDir, 'converted'), { keepQuantized: false });
  } else {
    def = await tokenizerDefinitionFromHfDirectory(location.path);
    transformer = loadHfTransformer(location.path, { keepQuantized: false });
  }
  // Gemma's config fields and x·(1 + w) norm weights are not what this writes: refuse rather than export another model.
  if (transformer.config.postNorms) throw new Error(`exporting ${transformer.config.architecture} models is not supported`);
  const tensors = hfTensors(transformer);
  mkdirSync(outDir, { recursive: true });
  mx.eval(...Object.values(tensors));
  mx.saveSafetensors(join(outDir, 'model.safetensors'), tensors, { format: 'pt' });
  const writeJson = (name: string, value: unknown) => writeFileSync(join(outDir, name), `${JSON.stringify(value, null, 2)}\n`);
  writeJson('config.json', hfConfigJson(transformer.config, def));
  writeJson('generation_config.json', hfGenerationConfigJson(def));
  writeJson('tokenizer.json', hfTokenizerJson(def));
  writeJson('tokenizer_config.json', hfTokenizerConfigJson(def, transformer.config.contextLength));
  return { id: location.id, outDir, config: transformer.config, tensorCount: Object.keys(tensors).length };
}

async function main(): Promise<void> {
  const opts = new Command()
    .name('export-hf')
    .description(
      'Write the model as this server loads it to a Hugging Face-layout directory (float32 safetensors, tokenizer, chat template)',
    )
    .requiredOption('--out <dir>', 'directory to write')
    .option('--model <spec>', 'model: GGUF file, HF directory or hub id (default: the default model)')
    .option('--cache-dir <dir>', 'model cache directory (default: $MLX_BATCH_SERVER_CACHE or ~/.cache/mlx-batch-server)')
    .parse()
    .opts<{ out: string; model?: string; cacheDir?: string }>();
  const r = await exportHf(opts.model, opts.out, opts.cacheDir ?? defaultCacheDir());
  process.stderr.write(`export-hf: wrote ${r.id} (${r.config.numLayers} layers, ${r.tensorCount} tensors, float32) to ${r.outDir}\n`);
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    process.stderr.write(`export-hf: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
