// The architecture registry: every module is found by the names checkpoints give it, unknown names
// are refused with the supported ones listed, and each family's differences show in the config.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ARCHITECTURES, architectureForGguf, architectureForHf } from '../src/engine/model/architectures/registry.ts';
import {
  configFromGguf,
  configFromHf,
  type ModelConfig,
  UnsupportedModelError,
  usesLongRope,
  validateConfig,
} from '../src/engine/model/config.ts';
import { type TinyModelSpec, tinyConfig } from './helpers/tiny-model.ts';

/** A GGUF header with the keys every llama-style architecture needs, under its own prefix. */
function ggufMeta(arch: string): Record<string, unknown> {
  return {
    'general.architecture': arch,
    [`${arch}.embedding_length`]: 64,
    [`${arch}.block_count`]: 2,
    [`${arch}.feed_forward_length`]: 128,
    [`${arch}.attention.head_count`]: 4,
    [`${arch}.attention.head_count_kv`]: 2,
  };
}

/** A config.json of Qwen3 (tinyConfig writes Llama's and Qwen2's). */
function qwen3Config(spec: TinyModelSpec = {}): Record<string, unknown> {
  return { ...tinyConfig(spec), model_type: 'qwen3', architectures: ['Qwen3ForCausalLM'] };
}

test('every registered architecture resolves from each of its Hugging Face and GGUF names', () => {
  const names = ARCHITECTURES.map((a) => a.name);
  assert.equal(new Set(names).size, names.length, 'architecture names are unique');
  for (const architecture of ARCHITECTURES) {
    assert.ok(architecture.hfModelTypes.length > 0, architecture.name);
    // Only Mistral has no GGUF name of its own: its files say "llama".
    assert.equal(architecture.ggufArchitectures.length > 0, architecture.name !== 'mistral', architecture.name);
    for (const modelType of architecture.hfModelTypes) {
      assert.equal(architectureForHf({ model_type: modelType }), architecture, modelType);
      assert.equal(configFromHf({ ...tinyConfig(), model_type: modelType }).architecture, architecture.name, modelType);
    }
    for (const arch of architecture.ggufArchitectures) {
      assert.equal(architectureForGguf({ 'general.architecture': arch }), architecture, arch);
      assert.equal(configFromGguf(ggufMeta(arch), 256, true).architecture, architecture.name, arch);
    }
  }
});

test('an unknown architecture is refused, naming it and listing the supported ones', () => {
  const hf = () => architectureForHf({ model_type: 'gpt_neox', architectures: ['GPTNeoXForCausalLM'] });
  assert.throws(hf, UnsupportedModelError);
  assert.throws(
    hf,
    /^UnsupportedModelError: unsupported architecture "gpt_neox" \(GPTNeoXForCausalLM\); supported: llama, mistral, phi3, qwen2, qwen3, gemma2, gemma3_text, gemma3$/,
  );
  assert.throws(() => architectureForHf({}), /unsupported architecture ""; supported: /);
  const gguf = () => architectureForGguf({ 'general.architecture': 'falcon' });
  assert.throws(gguf, UnsupportedModelError);
  assert.throws(
    gguf,
    /^UnsupportedModelError: unsupported GGUF architecture "falcon"; supported: llama, phi3, qwen2, qwen3, gemma2, gemma3$/,
  );
  assert.throws(() => configFromGguf(ggufMeta('falcon'), 256, true), /unsupported GGUF architecture "falcon"/);
});

test('Qwen2 has q/k/v biases and ties its embeddings unless told otherwise; Llama neither', () => {
  const qwen2 = configFromHf({ ...tinyConfig({ architecture: 'qwen2' }), tie_word_embeddings: undefined });
  assert.equal(qwen2.attentionBias, true);
  assert.equal(qwen2.tieWordEmbeddings, true);
  assert.equal(configFromHf(tinyConfig({ architecture: 'qwen2', tieWordEmbeddings: false })).tieWordEmbeddings, false);

  const llama = configFromHf({ ...tinyConfig(), tie_word_embeddings: undefined });
  assert.equal(llama.attentionBias, false);
  assert.equal(llama.tieWordEmbeddings, false);
  // A Llama config may ask for biases.
  assert.equal(configFromHf({ ...tinyConfig(), attention_bias: true }).attentionBias, true);

  assert.equal(configFromGguf(ggufMeta('qwen2'), 256, false).attentionBias, true);
  assert.equal(configFromGguf(ggufMeta('llama'), 256, false).attentionBias, false);
});

test('Qwen3 normalizes q and k per head, reads its explicit head_dim, has no biases and ties only when told', () => {
  const hf = configFromHf({ ...qwen3Config(), head_dim: 32, tie_word_embeddings: undefined });
  assert.equal(hf.architecture, 'qwen3');
  assert.equal(hf.qkNorm, true);
  assert.equal(hf.headDim, 32);
  assert.equal(hf.attentionBias, false);
  assert.equal(hf.tieWordEmbeddings, false);
  assert.equal(configFromHf({ ...qwen3Config({ tieWordEmbeddings: true }) }).tieWordEmbeddings, true);
  const gguf = configFromGguf({ ...ggufMeta('qwen3'), 'qwen3.attention.key_length': 32 }, 256, true);
  assert.equal(gguf.qkNorm, true);
  assert.equal(gguf.headDim, 32);
  assert.equal(gguf.tieWordEmbeddings, false);
  assert.equal(configFromHf(tinyConfig()).qkNorm, undefined);
  assert.equal(configFromHf(tinyConfig({ architecture: 'qwen2' })).qkNorm, undefined);
});

test("rope_theta is read from transformers 5's rope_parameters too", () => {
  const { rope_theta: _, ...raw } = qwen3Config();
  const c = configFromHf({ ...raw, rope_scaling: undefined, rope_parameters: { rope_theta: 1000000, rope_type: 'default' } });
  assert.equal(c.ropeTheta, 1000000);
  assert.equal(c.ropeScaling, undefined);
  const linear = configFromHf({ ...raw, rope_scaling: undefined, rope_parameters: { rope_theta: 5e5, rope_type: 'linear', factor: 2 } });
  assert.deepEqual(linear.ropeScaling, { type: 'linear', factor: 2 });
});

test('Mistral serves at most its sliding window; a null or disabled window leaves the context alone', () => {
  const mistral = (extra: Record<string, unknown>) =>
    configFromHf({ ...tinyConfig({ contextLength: 32768 }), model_type: 'mistral', ...extra });
  assert.equal(mistral({ sliding_window: 4096 }).contextLength, 4096);
  assert.equal(mistral({ sliding_window: 4096 }).architecture, 'mistral');
  assert.equal(mistral({ sliding_window: null }).contextLength, 32768);
  assert.equal(mistral({}).contextLength, 32768);
  assert.equal(mistral({ sliding_window: 65536 }).contextLength, 32768);
  // Mistral's GGUF files say "llama".
  assert.equal(configFromGguf(ggufMeta('llama'), 256, true).architecture, 'llama');
});

test('Phi-3 reads partial rotary embedding and LongRoPE (Phi-4-mini, the 128k variants) as transformers does', () => {
  const phi3 = (extra: Record<string, unknown>) => configFromHf({ ...tinyConfig(), model_type: 'phi3', ...extra });
  assert.equal(phi3({}).architecture, 'phi3');
  assert.equal(phi3({}).rotaryDim, undefined);
  assert.equal(phi3({ rope_parameters: { rope_theta: 10000, rope_type: 'default', partial_rotary_factor: 1.0 } }).ropeTheta, 10000);
  // int(head_dim * partial_rotary_factor) of head_dim 16; rope_parameters' value first, as transformers 5.
  assert.equal(phi3({ partial_rotary_factor: 0.75 }).rotaryDim, 12);
  assert.equal(phi3({ partial_rotary_factor: 1, rope_parameters: { rope_theta: 1e4, partial_rotary_factor: 0.5 } }).rotaryDim, 8);
  assert.throws(() => phi3({ partial_rotary_factor: 1.5 }), /partial_rotary_factor 1.5 must be in \(0, 1\]/);
  const short = [1, 1, 1, 1, 2, 2];
  const long = [2, 2, 4, 4, 8, 8];
  const longRope = (scaling: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    phi3({
      partial_rotary_factor: 0.75,
      max_position_embeddings: 131072,
      original_max_position_embeddings: 4096,
      rope_scaling: { type: 'longrope', short_factor: short, long_factor: long, ...scaling },
      ...extra,
    });
  const c = longRope({});
  assert.deepEqual(c.ropeScaling, {
    type: 'longrope',
    shortFactor: short,
    longFactor: long,
    attentionFactor: Math.sqrt(1 + Math.log(32) / Math.log(4096)),
    originalMaxPositionEmbeddings: 4096,
  });
  assert.equal(c.contextLength, 131072, 'the whole context: long requests rotate with the long factors');
  validateConfig(c);
  assert.equal(usesLongRope(c, 4096), false);
  assert.equal(usesLongRope(c, 4097), true);
  assert.equal(usesLongRope(phi3({}), 1e6), false);
  // The 128k models' older name; an explicit attention factor; Phi3Config's default original length (4096).
  assert.equal(longRope({ type: 'su' }).ropeScaling?.type, 'longrope');
  const attentionFactor = (x: ModelConfig) => (x.ropeScaling as { attentionFactor: number }).attentionFactor;
  assert.equal(attentionFactor(longRope({ attention_factor: 1.5 })), 1.5);
  // The scaling's own original length is not read (Phi3Config's top-level one, default 4096, wins).
  assert.deepEqual(
    longRope({ original_max_position_embeddings: 8192 }, { original_max_position_embeddings: undefined }).ropeScaling,
    c.ropeScaling,
  );
  // transformers 5 writes it all as rope_parameters.
  const v5 = phi3({
    rope_theta: undefined,
    max_position_embeddings: 131072,
    original_max_position_embeddings: 4096,
    rope_parameters: { rope_type: 'longrope', rope_theta: 250000, partial_rotary_factor: 0.75, short_factor: short, long_factor: long },
  });
  assert.deepEqual(v5.ropeScaling, c.ropeScaling);
  assert.equal(v5.ropeTheta, 250000);
  assert.equal(v5.rotaryDim, 12);
  assert.throws(() => validateConfig(longRope({ long_factor: [1, 2] })), /long_factor has 2 values, expected 6/);
  assert.throws(() => longRope({ short_factor: [1, 'x'] }), /short_factor must be a list of positive numbers/);
  assert.equal(phi3({ sliding_window: 2047, max_position_embeddings: 4096 }).contextLength, 2047);
  const gguf = (extra: Record<string, unknown>) => configFromGguf({ ...ggufMeta('phi3'), ...extra }, 256, true);
  assert.equal(gguf({ 'phi3.rope.dimension_count': 16 }).rotaryDim, undefined);
  assert.equal(gguf({ 'phi3.attention.sliding_window': 2047, 'phi3.context_length': 4096 }).contextLength, 2047);
  assert.equal(gguf({ 'phi3.rope.dimension_count': 12 }).rotaryDim, 12);
  // LongRoPE: the attention factor and original length in the header, the factors (one per pair of 16) as tensors.
  const longRopeMeta = { 'phi3.rope.scaling.attn_factor': 1.19, 'phi3.rope.scaling.original_context_length': 4096 };
  assert.throws(() => gguf(longRopeMeta), /LongRoPE scaling lacks rope_factors_short\/long.weight/);
  const tensors: Record<string, Float32Array> = {
    'rope_factors_short.weight': Float32Array.from(short.concat(short.slice(0, 2))),
    'rope_factors_long.weight': Float32Array.from(long.concat(long.slice(0, 2))),
  };
  const fromGguf = configFromGguf({ ...ggufMeta('phi3'), ...longRopeMeta }, 256, true, (name) => tensors[name]);
  assert.deepEqual(fromGguf.ropeScaling, {
    type: 'longrope',
    shortFactor: [...short, ...short.slice(0, 2)],
    longFactor: [...long, ...long.slice(0, 2)],
    attentionFactor: 1.19,
    originalMaxPositionEmbeddings: 4096,
  });
  validateConfig(fromGguf);
});

test('GGUF q/k rows are permuted for llama and not for qwen2 or qwen3', () => {
  assert.equal(architectureForGguf({ 'general.architecture': 'llama' }).ggufPermutesQk, true);
  assert.equal(architectureForGguf({ 'general.architecture': 'qwen2' }).ggufPermutesQk, false);
  assert.equal(architectureForGguf({ 'general.architecture': 'qwen3' }).ggufPermutesQk, false);
});

test('both families read the shared llama-style fields alike', () => {
  const spec = { hiddenSize: 128, numHeads: 8, numKvHeads: 2, contextLength: 1024 };
  const { architecture: _l, attentionBias: _la, ...llama } = configFromHf(tinyConfig(spec));
  const { architecture: _q, attentionBias: _qa, ...qwen2 } = configFromHf(tinyConfig({ ...spec, architecture: 'qwen2' }));
  assert.deepEqual(qwen2, llama);
  assert.equal(llama.headDim, 16);
  assert.equal(llama.contextLength, 1024);
});

test('Gemma 2 reads a hub config: gelu, soft caps, query_pre_attn_scalar, even layers local, the window run rather than capped', () => {
  // google/gemma-2-2b-it's config.json.
  const raw = {
    architectures: ['Gemma2ForCausalLM'],
    attn_logit_softcapping: 50.0,
    final_logit_softcapping: 30.0,
    head_dim: 256,
    hidden_act: 'gelu_pytorch_tanh',
    hidden_activation: 'gelu_pytorch_tanh',
    hidden_size: 2304,
    intermediate_size: 9216,
    max_position_embeddings: 8192,
    model_type: 'gemma2',
    num_attention_heads: 8,
    num_hidden_layers: 26,
    num_key_value_heads: 4,
    query_pre_attn_scalar: 256,
    rms_norm_eps: 1e-6,
    rope_theta: 10000.0,
    sliding_window: 4096,
    torch_dtype: 'float32',
    vocab_size: 256000,
  };
  const c = configFromHf(raw);
  assert.equal(c.architecture, 'gemma2');
  assert.equal(c.headDim, 256);
  assert.equal(c.contextLength, 8192);
  assert.equal(c.slidingWindow, 4096);
  assert.deepEqual(
    c.slidingLayers,
    Array.from({ length: 26 }, (_, i) => i % 2 === 0),
  );
  assert.equal(c.attnLogitSoftcap, 50);
  assert.equal(c.finalLogitSoftcap, 30);
  assert.equal(c.attentionScale, 1 / 16);
  assert.equal(c.embedScale, Math.fround(Math.sqrt(2304)));
  assert.equal(c.hiddenAct, 'gelu_tanh');
  assert.equal(c.postNorms, true);
  assert.equal(c.normWeightOffset, 1);
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.qkNorm, undefined);
  // Gemma2Config's defaults when the caps are absent; null turns one off.
  const { attn_logit_softcapping: _a, final_logit_softcapping: _f, ...bare } = raw;
  assert.equal(configFromHf(bare).attnLogitSoftcap, 50);
  assert.equal(configFromHf({ ...raw, final_logit_softcapping: null }).finalLogitSoftcap, undefined);
  assert.throws(() => configFromHf({ ...raw, hidden_activation: 'relu' }), /hidden_activation "relu" is not supported/);
  // transformers 5's layer_types win over the default pattern.
  const types = Array.from({ length: 26 }, (_, i) => (i < 2 ? 'full_attention' : 'sliding_attention'));
  assert.equal(configFromHf({ ...raw, layer_types: types }).slidingLayers?.[0], false);
});

test('Gemma 3: text-only and multimodal (text_config, defaults, bfloat16 embedding scale, tensor names) configs', () => {
  // google/gemma-3-1b-it's config.json (transformers 4.50 format).
  const oneB = configFromHf({
    architectures: ['Gemma3ForCausalLM'],
    attn_logit_softcapping: null,
    final_logit_softcapping: null,
    head_dim: 256,
    hidden_activation: 'gelu_pytorch_tanh',
    hidden_size: 1152,
    intermediate_size: 6912,
    max_position_embeddings: 32768,
    model_type: 'gemma3_text',
    num_attention_heads: 4,
    num_hidden_layers: 26,
    num_key_value_heads: 1,
    query_pre_attn_scalar: 256,
    rms_norm_eps: 1e-6,
    rope_local_base_freq: 10000,
    rope_scaling: null,
    rope_theta: 1000000,
    sliding_window: 512,
    sliding_window_pattern: 6,
    torch_dtype: 'bfloat16',
    vocab_size: 262144,
  });
  assert.equal(oneB.architecture, 'gemma3');
  assert.equal(oneB.qkNorm, true);
  assert.equal(oneB.embedScale, 34, 'sqrt(1152) = 33.94 in bfloat16');
  assert.equal(oneB.ropeTheta, 1000000);
  assert.equal(oneB.localRopeTheta, 10000);
  assert.equal(oneB.ropeScaling, undefined);
  assert.equal(oneB.attnLogitSoftcap, undefined);
  assert.equal(oneB.finalLogitSoftcap, undefined);
  assert.equal(oneB.contextLength, 32768);
  assert.deepEqual(
    oneB.slidingLayers,
    Array.from({ length: 26 }, (_, i) => (i + 1) % 6 !== 0),
  );
  // google/gemma-3-4b-it: a multimodal config whose text_config leaves most fields to the defaults.
  const fourB = configFromHf({
    architectures: ['Gemma3ForConditionalGeneration'],
    model_type: 'gemma3',
    text_config: {
      hidden_size: 2560,
      intermediate_size: 10240,
      model_type: 'gemma3_text',
      num_hidden_layers: 34,
      rope_scaling: { factor: 8.0, rope_type: 'linear' },
      sliding_window: 1024,
    },
    torch_dtype: 'bfloat16',
    vision_config: { model_type: 'siglip_vision_model' },
  });
  assert.equal(fourB.vocabSize, 262208);
  assert.equal(fourB.numHeads, 8);
  assert.equal(fourB.numKvHeads, 4);
  assert.equal(fourB.headDim, 256);
  assert.equal(fourB.attentionScale, 1 / 16);
  assert.equal(fourB.embedScale, 50.5, 'sqrt(2560) = 50.596 in bfloat16');
  assert.deepEqual(fourB.ropeScaling, { type: 'linear', factor: 8 });
  assert.equal(fourB.localRopeTheta, 10000);
  assert.equal(fourB.slidingWindow, 1024);
  assert.equal(fourB.contextLength, 131072);
  const rename = architectureForHf({ model_type: 'gemma3' }).hfTensorName;
  assert.equal(rename?.('language_model.model.layers.0.mlp.up_proj.weight'), 'model.layers.0.mlp.up_proj.weight');
  assert.equal(rename?.('model.language_model.embed_tokens.weight'), 'model.embed_tokens.weight');
  assert.equal(rename?.('vision_tower.vision_model.embeddings.patch_embedding.weight'), undefined);
  assert.equal(rename?.('multi_modal_projector.mm_soft_emb_norm.weight'), undefined);
});

test('Gemma GGUF headers: norms already shifted, llama.cpp window patterns and attention scales', () => {
  const meta = (arch: string, layers: number, extra: Record<string, unknown> = {}) => ({
    ...ggufMeta(arch),
    [`${arch}.block_count`]: layers,
    [`${arch}.attention.key_length`]: 32,
    [`${arch}.attention.sliding_window`]: 16,
    ...extra,
  });
  const g2 = configFromGguf(meta('gemma2', 4, { 'gemma2.attn_logit_softcapping': 50, 'gemma2.final_logit_softcapping': 30 }), 256, false);
  assert.equal(g2.architecture, 'gemma2');
  assert.equal(g2.normWeightOffset, undefined);
  assert.deepEqual(g2.slidingLayers, [true, false, true, false]);
  assert.equal(g2.attnLogitSoftcap, 50);
  assert.equal(g2.attentionScale, 32 ** -0.5);
  assert.equal(g2.tieWordEmbeddings, true);
  // Gemma 2 27B (46 layers) scales by hidden/heads, as llama.cpp does.
  assert.equal(configFromGguf(meta('gemma2', 46), 256, false).attentionScale, 16 ** -0.5);
  const g3 = configFromGguf(meta('gemma3', 12, { 'gemma3.rope.freq_base': 1e6 }), 256, false);
  assert.equal(g3.qkNorm, true);
  assert.equal(g3.localRopeTheta, 10000);
  assert.equal(g3.attnLogitSoftcap, undefined);
  assert.deepEqual(
    g3.slidingLayers,
    Array.from({ length: 12 }, (_, i) => i !== 5 && i !== 11),
  );
  assert.equal(architectureForGguf({ 'general.architecture': 'gemma3' }).ggufPermutesQk, false);
});
