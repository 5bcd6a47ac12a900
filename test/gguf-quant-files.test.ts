// The files people actually run: llama.cpp's llama-quantize turns SmolLM2-135M-Instruct's F32 GGUF
// into Q4_K_M, Q5_K_M, Q6_K and Q8_0 (K-quants, with Q5_0/Q5_1/Q8_0 for rows of 576 values, which
// are not a multiple of 256), and each loads and generates greedily. Needs llama.cpp and the F32
// file (bench/peers/setup.sh puts them in $PEERS_DIR, default ~/.cache/mlx-batch-server-peers);
// skipped with a message when they are absent (CI).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { CpuKernels } from '../src/engine/engine-options.ts';
import { readGguf } from '../src/engine/gguf.ts';
import { loadModel } from '../src/engine/load-model.ts';
import type { ModelLocation } from '../src/engine/engine-protocol.ts';
import { loadTokenizer } from '../src/text/load-tokenizer.ts';
import { EngineHarness } from './helpers/engine-harness.ts';

const PEERS_DIR = process.env.PEERS_DIR ?? join(homedir(), '.cache', 'mlx-batch-server-peers');
const QUANTIZE = join(PEERS_DIR, 'llama.cpp', 'build', 'bin', 'llama-quantize');
const F32_GGUF = join(PEERS_DIR, 'models', 'SmolLM2-135M-Instruct.F32.gguf');
const missing = [QUANTIZE, F32_GGUF].filter((p) => !existsSync(p));
const skip = missing.length ? `needs llama.cpp's llama-quantize and the F32 GGUF: missing ${missing.join(', ')}` : false;

const PROMPT = 'The capital of France is';
const TOKENS = 12;

/** What each file holds beyond F32 norms, by GGUF type name (llama-quantize's choices for this model). */
const EXPECTED_TYPES: Record<string, string[]> = {
  Q4_K_M: ['Q4_K', 'Q5_0', 'Q6_K', 'Q8_0'],
  Q5_K_M: ['Q5_1', 'Q5_K', 'Q6_K', 'Q8_0'],
  Q6_K: ['Q6_K', 'Q8_0'],
  Q8_0: ['Q8_0'],
};

describe('llama-quantize files of SmolLM2-135M-Instruct load and generate', { skip }, () => {
  const dir = skip ? '' : mkdtempSync(join(tmpdir(), 'gguf-quant-files-'));
  after(() => dir && rmSync(dir, { recursive: true, force: true }));
  const generated = new Map<string, number[]>();

  async function generate(name: string, path: string, kernels: CpuKernels) {
    const location: ModelLocation = { id: name, format: 'gguf', path };
    const cacheDir = join(dir, `cache-${name}-${kernels}`);
    const model = await loadModel(location, { cacheDir, cpuKernels: kernels });
    assert.equal(model.native !== undefined, kernels === 'native', model.fallbackReason);
    const h = new EngineHarness(model, await loadTokenizer(location), { prefixCache: false });
    const r = h.generate({ kind: 'text', text: PROMPT }, { maxTokens: TOKENS, ignoreEos: true });
    // The converted weights are largely f32 (up to 540 MB a file): drop them once the model is loaded.
    rmSync(cacheDir, { recursive: true, force: true });
    return r;
  }

  test('F32 (the reference)', async (t) => {
    const r = await generate('F32', F32_GGUF, 'native');
    t.diagnostic(`F32: ${JSON.stringify(r.text)}`);
    assert.equal(r.tokenIds.length, TOKENS);
    generated.set('F32', r.tokenIds);
  });

  for (const type of Object.keys(EXPECTED_TYPES))
    test(type, async (t) => {
      const path = join(dir, `SmolLM2-135M-Instruct.${type}.gguf`);
      const q = spawnSync(QUANTIZE, [F32_GGUF, path, type, '2'], { encoding: 'utf8' });
      assert.equal(q.status, 0, `llama-quantize ${type} failed: ${q.stderr.slice(-2000)}`);
      const types = new Set((await readGguf(path)).tensors.map((x) => x.typeName));
      types.delete('F32');
      assert.deepEqual([...types].sort(), EXPECTED_TYPES[type]);
      // Both CPU paths for the mix people download most; the native kernels (the default) for all.
      for (const kernels of (type === 'Q4_K_M' ? ['native', 'mlx'] : ['native']) as CpuKernels[]) {
        const r = await generate(type, path, kernels);
        const reference = generated.get('F32') ?? [];
        let agree = 0;
        while (agree < r.tokenIds.length && r.tokenIds[agree] === reference[agree]) agree++;
        t.diagnostic(`${type} (${kernels}): ${JSON.stringify(r.text)}; first ${agree} of ${TOKENS} tokens as F32`);
        assert.equal(r.error, undefined);
        assert.equal(r.tokenIds.length, TOKENS);
        assert.ok(r.text.trim().length > 0, 'non-empty text');
      }
      rmSync(path, { force: true });
    });
});
