// The architecture registry: every module is found by the names checkpoints give it, unknown names
// are refused with the supported ones listed, and each family's differences show in the config.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ARCHITECTURES, architectureForGguf, architectureForHf } from '../src/engine/model/architectures/registry.ts';
import { configFromGguf, configFromHf, UnsupportedModelError } from '../src/engine/model/config.ts';
import { tinyConfig } from './helpers/tiny-model.ts';

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

test('every registered architecture resolves from each of its Hugging Face and GGUF names', () => {
  const names = ARCHITECTURES.map((a) => a.name);
  assert.equal(new Set(names).size, names.length, 'architecture names are unique');
  for (const architecture of ARCHITECTURES) {
    assert.ok(architecture.hfModelTypes.length > 0 && architecture.ggufArchitectures.length > 0, architecture.name);
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
    /^UnsupportedModelError: unsupported architecture "gpt_neox" \(GPTNeoXForCausalLM\); supported: llama, mistral, qwen2$/,
  );
  assert.throws(() => architectureForHf({}), /unsupported architecture ""; supported: /);
  const gguf = () => architectureForGguf({ 'general.architecture': 'falcon' });
  assert.throws(gguf, UnsupportedModelError);
  assert.throws(gguf, /^UnsupportedModelError: unsupported GGUF architecture "falcon"; supported: llama, qwen2$/);
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

test('GGUF q/k rows are permuted for llama and not for qwen2', () => {
  assert.equal(architectureForGguf({ 'general.architecture': 'llama' }).ggufPermutesQk, true);
  assert.equal(architectureForGguf({ 'general.architecture': 'qwen2' }).ggufPermutesQk, false);
});

test('both families read the shared llama-style fields alike', () => {
  const spec = { hiddenSize: 128, numHeads: 8, numKvHeads: 2, contextLength: 1024 };
  const { architecture: _l, attentionBias: _la, ...llama } = configFromHf(tinyConfig(spec));
  const { architecture: _q, attentionBias: _qa, ...qwen2 } = configFromHf(tinyConfig({ ...spec, architecture: 'qwen2' }));
  assert.deepEqual(qwen2, llama);
  assert.equal(llama.headDim, 16);
  assert.equal(llama.contextLength, 1024);
});
