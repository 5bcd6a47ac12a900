// scripts/export-hf.ts: what it writes loads back in our own loader as the same model. From a
// Hugging Face directory the tensors come back exactly; from a GGUF (q/k rows permuted the way
// llama.cpp stores them) they come back un-permuted, under Hugging Face names; the tokenizer
// encodes and renders chat the same as the one it came from.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { exportHf } from '../scripts/export-hf.ts';
import { configFromHf } from '../src/engine/model/config.ts';
import { Tokenizer } from '../src/text/tokenizer.ts';
import { readGguf } from '../src/engine/gguf.ts';
import { BYTE_TO_CHAR } from '../src/text/byte-level.ts';
import { ggufFile, llamaGgufMetadata, permuteRowsForGguf, T, type Kv, type TensorSpec } from './helpers/gguf-writer.ts';
import { tinyConfig, tinyWeights, writeTinyModel, writeTinyTokenizer } from './helpers/tiny-model.ts';
import { mx, type MxArray } from '../src/engine/mlx.ts';

const dirs: string[] = [];
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const TEXTS = ['Hello, world!', 'tides and the moon 123', 'ünïcödé ✓'];
const CHAT = [{ role: 'user', content: 'What is a river delta?' }];

function assertSameTensors(actual: Record<string, MxArray>, expected: Record<string, MxArray>) {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
  for (const [name, e] of Object.entries(expected)) {
    const a = actual[name];
    assert.deepEqual(a.shape, e.shape, name);
    assert.equal(a.dtype, mx.float32, name);
    assert.equal(mx.arrayEqual(a, e.astype(mx.float32)).item(), true, `${name} differs`);
  }
}

function assertSameTokenizer(exported: Tokenizer, original: Tokenizer) {
  for (const text of TEXTS) assert.deepEqual(exported.encode(text), original.encode(text), text);
  assert.equal(exported.applyChatTemplate(CHAT), original.applyChatTemplate(CHAT));
  assert.deepEqual(exported.eosTokenIds, original.eosTokenIds);
  assert.equal(exported.bosTokenId, original.bosTokenId);
}

for (const family of ['qwen3', 'mistral', 'phi3'])
  test(`the ${family} fixture exports to the same tensors (q/k norms, fused projections) and config`, async () => {
    const src = tempDir(`export-${family}-src-`);
    for (const f of ['config.json', 'model.safetensors'])
      copyFileSync(join(import.meta.dirname, 'fixtures', 'architectures', family, f), join(src, f));
    writeTinyTokenizer(src);
    const out = join(tempDir(`export-${family}-`), 'out');
    await exportHf(src, out, tempDir('export-cache-'));
    const tensors = mx.load(join(src, 'model.safetensors')) as unknown as Record<string, MxArray>;
    // A tied LM head is not a tensor of its own in either.
    assertSameTensors(mx.load(join(out, 'model.safetensors')) as unknown as Record<string, MxArray>, tensors);
    const readConfig = (d: string) => configFromHf(JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')));
    assert.deepEqual(readConfig(out), readConfig(src));
  });

test('a Hugging Face directory exports to the same tensors, config and tokenizer', async () => {
  const src = writeTinyModel({ numLayers: 2, hiddenSize: 64, numHeads: 4, numKvHeads: 2, seed: 5 });
  dirs.push(src);
  const out = join(tempDir('export-hf-'), 'out');
  const result = await exportHf(src, out, tempDir('export-cache-'));
  assert.equal(result.tensorCount, 2 * 9 + 3);
  assertSameTensors(
    mx.load(join(out, 'model.safetensors')) as unknown as Record<string, MxArray>,
    mx.load(join(src, 'model.safetensors')) as unknown as Record<string, MxArray>,
  );
  const readConfig = (d: string) => configFromHf(JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')));
  assert.deepEqual(readConfig(out), readConfig(src));
  assertSameTokenizer(await Tokenizer.fromHfDirectory(out), await Tokenizer.fromHfDirectory(src));
});

test('a GGUF exports with q/k un-permuted, Hugging Face names, and its tokenizer and chat template', async () => {
  const H = 64,
    heads = 4,
    kvHeads = 2,
    I = 96,
    layers = 2;
  const tokens = [...BYTE_TO_CHAR, '<|bos|>', '<|eos|>', '<|im_start|>', '<|im_end|>'];
  const config = tinyConfig({
    vocabSize: tokens.length,
    hiddenSize: H,
    numHeads: heads,
    numKvHeads: kvHeads,
    intermediateSize: I,
    numLayers: layers,
  });
  const hf = tinyWeights(config, 9);
  const GGUF_NAMES: Record<string, string> = {
    'self_attn.q_proj': 'attn_q',
    'self_attn.k_proj': 'attn_k',
    'self_attn.v_proj': 'attn_v',
    'self_attn.o_proj': 'attn_output',
    'mlp.gate_proj': 'ffn_gate',
    'mlp.up_proj': 'ffn_up',
    'mlp.down_proj': 'ffn_down',
    input_layernorm: 'attn_norm',
    post_attention_layernorm: 'ffn_norm',
  };
  const tensors: TensorSpec[] = Object.entries(hf).map(([name, a]) => {
    let values: Float32Array = new Float32Array((a.tolist() as number[] | number[][]).flat());
    const layer = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(name);
    let ggufName = {
      'model.embed_tokens.weight': 'token_embd.weight',
      'model.norm.weight': 'output_norm.weight',
      'lm_head.weight': 'output.weight',
    }[name];
    if (layer) {
      ggufName = `blk.${layer[1]}.${GGUF_NAMES[layer[2]]}.weight`;
      if (layer[2] === 'self_attn.q_proj') values = permuteRowsForGguf(values, a.shape[0], a.shape[1], heads);
      if (layer[2] === 'self_attn.k_proj') values = permuteRowsForGguf(values, a.shape[0], a.shape[1], kvHeads);
    }
    assert.ok(ggufName, name);
    return { name: ggufName, ne: [...a.shape].reverse(), type: 0, data: Buffer.from(values.buffer) };
  });
  const template =
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const kvs: Kv[] = [
    ...llamaGgufMetadata({
      contextLength: 512,
      hiddenSize: H,
      numLayers: layers,
      intermediateSize: I,
      numHeads: heads,
      numKvHeads: kvHeads,
      tokens,
    }),
    { key: 'tokenizer.ggml.add_bos_token', type: T.BOOL, value: true },
    { key: 'tokenizer.chat_template', type: T.STRING, value: template },
  ];
  const dir = tempDir('export-gguf-');
  const gguf = join(dir, 'tiny.gguf');
  writeFileSync(gguf, ggufFile(kvs, tensors));

  const out = join(dir, 'hf');
  await exportHf(gguf, out, join(dir, 'cache'));
  assertSameTensors(mx.load(join(out, 'model.safetensors')) as unknown as Record<string, MxArray>, hf);
  const exportedConfig = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(exportedConfig.rms_norm_eps, 1e-5);
  assert.deepEqual({ ...configFromHf(exportedConfig), contextLength: 512 }, { ...configFromHf(config), contextLength: 512 });
  const original = Tokenizer.fromGguf((await readGguf(gguf)).metadata);
  const exported = await Tokenizer.fromHfDirectory(out);
  assertSameTokenizer(exported, original);
  assert.equal(exported.encode('hi')[0], 256, 'add_bos_token survives as the post-processor');
  const tokenizerJson = JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8'));
  assert.deepEqual(tokenizerJson.post_processor.special_tokens['<|bos|>'], { id: '<|bos|>', ids: [256], tokens: ['<|bos|>'] });
  assert.equal(JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')).chat_template, template);
});
