// Builds small random-weight checkpoints in Hugging Face layout for tests: config.json plus
// model.safetensors written by MLX itself, so the real loader and forward pass run on them.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BYTE_TO_CHAR } from '../../src/text/byte-level.ts';
import { mx, type MxArray } from '../../src/engine/mlx.ts';

export interface TinyModelSpec {
  architecture?: 'llama' | 'qwen2';
  vocabSize?: number;
  hiddenSize?: number;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  intermediateSize?: number;
  contextLength?: number;
  tieWordEmbeddings?: boolean;
  ropeScaling?: Record<string, unknown>;
  seed?: number;
  /** Scales the LM head so that logits are spread out and greedy choices are rarely near-ties. */
  logitScale?: number;
  /** More fields of generation_config.json (sampling defaults: temperature, max_new_tokens, …). */
  generationConfig?: Record<string, unknown>;
}

export function tinyConfig(spec: TinyModelSpec = {}): Record<string, unknown> {
  const hidden = spec.hiddenSize ?? 64;
  const heads = spec.numHeads ?? 4;
  return {
    model_type: spec.architecture ?? 'llama',
    architectures: [spec.architecture === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    vocab_size: spec.vocabSize ?? 256,
    hidden_size: hidden,
    num_hidden_layers: spec.numLayers ?? 2,
    num_attention_heads: heads,
    num_key_value_heads: spec.numKvHeads ?? 2,
    intermediate_size: spec.intermediateSize ?? 128,
    max_position_embeddings: spec.contextLength ?? 512,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: spec.ropeScaling ?? null,
    tie_word_embeddings: spec.tieWordEmbeddings ?? false,
  };
}

/** Random weights with the scales a trained model has (so activations neither vanish nor explode). */
export function tinyWeights(config: Record<string, unknown>, seed = 0, logitScale = 1): Record<string, MxArray> {
  mx.random.seed(seed);
  const H = config.hidden_size as number;
  const V = config.vocab_size as number;
  const heads = config.num_attention_heads as number;
  const kvHeads = config.num_key_value_heads as number;
  const D = H / heads;
  const I = config.intermediate_size as number;
  const normal = (shape: number[], std: number) => mx.multiply(mx.random.normal(shape), std);
  const w: Record<string, MxArray> = {};
  w['model.embed_tokens.weight'] = normal([V, H], 1);
  for (let i = 0; i < (config.num_hidden_layers as number); i++) {
    const p = `model.layers.${i}`;
    w[`${p}.self_attn.q_proj.weight`] = normal([heads * D, H], 1 / Math.sqrt(H));
    w[`${p}.self_attn.k_proj.weight`] = normal([kvHeads * D, H], 1 / Math.sqrt(H));
    w[`${p}.self_attn.v_proj.weight`] = normal([kvHeads * D, H], 1 / Math.sqrt(H));
    w[`${p}.self_attn.o_proj.weight`] = normal([H, heads * D], 1 / Math.sqrt(heads * D));
    if (config.model_type === 'qwen2') {
      w[`${p}.self_attn.q_proj.bias`] = normal([heads * D], 0.1);
      w[`${p}.self_attn.k_proj.bias`] = normal([kvHeads * D], 0.1);
      w[`${p}.self_attn.v_proj.bias`] = normal([kvHeads * D], 0.1);
    }
    w[`${p}.mlp.gate_proj.weight`] = normal([I, H], 1 / Math.sqrt(H));
    w[`${p}.mlp.up_proj.weight`] = normal([I, H], 1 / Math.sqrt(H));
    w[`${p}.mlp.down_proj.weight`] = normal([H, I], 1 / Math.sqrt(I));
    w[`${p}.input_layernorm.weight`] = mx.add(normal([H], 0.1), 1);
    w[`${p}.post_attention_layernorm.weight`] = mx.add(normal([H], 0.1), 1);
  }
  w['model.norm.weight'] = mx.add(normal([H], 0.1), 1);
  if (!config.tie_word_embeddings) w['lm_head.weight'] = normal([V, H], logitScale / Math.sqrt(H));
  mx.eval(...Object.values(w));
  return w;
}

/** Special tokens of the tiny tokenizer, after the 256 byte tokens. */
export const TINY_SPECIAL = { bos: 256, eos: 257, imStart: 258, imEnd: 259 } as const;
export const TINY_VOCAB = 260;

/**
 * A byte-level BPE tokenizer with one token per byte and no merges (so any text round-trips and
 * token ids are predictable: the UTF-8 bytes), plus chat special tokens and a ChatML template.
 */
export function writeTinyTokenizer(dir: string, generationConfig: Record<string, unknown> = {}): void {
  const vocab: Record<string, number> = {};
  BYTE_TO_CHAR.forEach((ch, b) => (vocab[ch] = b));
  const specials = [
    ['<|bos|>', TINY_SPECIAL.bos],
    ['<|eos|>', TINY_SPECIAL.eos],
    ['<|im_start|>', TINY_SPECIAL.imStart],
    ['<|im_end|>', TINY_SPECIAL.imEnd],
  ] as const;
  for (const [t, id] of specials) vocab[t] = id;
  const tokenizer = {
    version: '1.0',
    added_tokens: specials.map(([content, id]) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: [],
    },
  };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({
      bos_token: '<|bos|>',
      eos_token: '<|im_end|>',
      add_bos_token: false,
      chat_template:
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    }),
  );
  writeFileSync(
    join(dir, 'generation_config.json'),
    JSON.stringify({ eos_token_id: [TINY_SPECIAL.eos, TINY_SPECIAL.imEnd], ...generationConfig }),
  );
}

/** Writes a tiny checkpoint directory (weights, config, tokenizer) and returns its path. */
export function writeTinyModel(spec: TinyModelSpec = {}, dir?: string): string {
  const out = dir ?? mkdtempSync(join(tmpdir(), 'tiny-model-'));
  const config = tinyConfig({ vocabSize: TINY_VOCAB, ...spec });
  writeFileSync(join(out, 'config.json'), JSON.stringify(config, null, 2));
  mx.saveSafetensors(join(out, 'model.safetensors'), tinyWeights(config, spec.seed ?? 0, spec.logitScale ?? 1));
  writeTinyTokenizer(out, spec.generationConfig);
  return out;
}
