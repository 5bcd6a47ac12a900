// LoRA adapters for tests, and the reference they are held to: a copy of the base model with the
// adapter merged into its weights (W + scale·B·A, src/engine/lora/merged-weight.ts).
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  layerModulePaths,
  LORA_MODULE_PATHS,
  type LoraModule,
  projectionShape,
  readLoraAdapter,
} from '../../src/engine/lora/lora-adapter.ts';
import { mergedWeight } from '../../src/engine/lora/merged-weight.ts';
import { configFromHf } from '../../src/engine/model/config.ts';
import { floatValues, readSafetensors } from '../../src/engine/model/safetensors-reader.ts';
import { type SafetensorsEntry, writeSafetensors } from '../../src/engine/model/safetensors-writer.ts';

export interface RandomAdapterSpec {
  rank: number;
  alpha: number;
  modules: LoraModule[];
  seed: number;
  /** Standard deviation of A's and B's entries. */
  std?: number;
  useRslora?: boolean;
}

/** A deterministic normal generator (mulberry32 + Box–Muller). */
function normals(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

function f32Entry(values: Float32Array, shape: number[]): SafetensorsEntry {
  return { dtype: 'F32', shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/** Writes a PEFT adapter (adapter_model.safetensors + adapter_config.json) with random A and B for the model in `modelDir`. */
export function writeRandomPeftAdapter(dir: string, modelDir: string, spec: RandomAdapterSpec): string {
  const c = configFromHf(JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')));
  const next = normals(spec.seed);
  const std = spec.std ?? 0.05;
  const random = (n: number) => Float32Array.from({ length: n }, () => next() * std);
  const tensors = new Map<string, SafetensorsEntry>();
  for (let layer = 0; layer < c.numLayers; layer++) {
    for (const m of spec.modules) {
      const [inF, outF] = projectionShape(m, c);
      const prefix = `base_model.model.model.layers.${layer}.${LORA_MODULE_PATHS[m]}`;
      tensors.set(`${prefix}.lora_A.weight`, f32Entry(random(spec.rank * inF), [spec.rank, inF]));
      tensors.set(`${prefix}.lora_B.weight`, f32Entry(random(outF * spec.rank), [outF, spec.rank]));
    }
  }
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors);
  const config = {
    peft_type: 'LORA',
    r: spec.rank,
    lora_alpha: spec.alpha,
    lora_dropout: 0.1,
    target_modules: spec.modules,
    use_rslora: spec.useRslora ?? false,
    bias: 'none',
    task_type: 'CAUSAL_LM',
  };
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(config, null, 2));
  return dir;
}

/**
 * Copies the Hugging Face model in `modelDir` to `outDir` with the adapter in `adapterDir` merged
 * into its weights (f32), the other files (config, tokenizer) as they are.
 */
export function writeMergedModel(modelDir: string, adapterDir: string, outDir: string): string {
  const config = configFromHf(JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')));
  const adapter = readLoraAdapter(adapterDir, { config, modules: layerModulePaths(config) }, { maxRank: 1024 });
  const parts = new Map(adapter.modules.map((m) => [`model.layers.${m.layer}.${LORA_MODULE_PATHS[m.module]}.weight`, m]));
  mkdirSync(outDir, { recursive: true });
  for (const f of readdirSync(modelDir)) {
    if (f.endsWith('.safetensors') || f === 'model.safetensors.index.json') continue;
    copyFileSync(join(modelDir, f), join(outDir, f));
  }
  const files = readdirSync(modelDir).filter((f) => f.endsWith('.safetensors'));
  let merged = 0;
  for (const f of files) {
    const out = new Map<string, SafetensorsEntry>();
    for (const [name, t] of readSafetensors(join(modelDir, f))) {
      const part = parts.get(name);
      if (part) {
        out.set(name, f32Entry(mergedWeight(floatValues(t), part), t.shape));
        merged++;
      } else out.set(name, { dtype: t.dtype as SafetensorsEntry['dtype'], shape: t.shape, data: new Uint8Array(t.data) });
    }
    writeSafetensors(join(outDir, f), out);
  }
  if (existsSync(join(modelDir, 'model.safetensors.index.json'))) {
    copyFileSync(join(modelDir, 'model.safetensors.index.json'), join(outDir, 'model.safetensors.index.json'));
  }
  if (merged !== parts.size) throw new Error(`merged ${merged} of the adapter's ${parts.size} projections`);
  return outDir;
}
