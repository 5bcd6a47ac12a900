// An adapter's per-module A and B matrices regrouped the way both engines compute a layer: by fused
// projection (q|k|v, o, gate|up, down). Each fused projection gets one update y += (x·Aᵀ)·Bᵀ: A
// stacks the adapted modules' A rows, B places each module's B (times the scale) in its own rows
// and rank columns, zero elsewhere. One pair of small matmuls per fused projection then covers
// all its modules.
import type { LoraAdapter, LoraModule } from './lora-adapter.ts';

export type LoraTarget = 'qkv' | 'o' | 'gateUp' | 'down';

/** Which fused projection each module is part of, and where its outputs start there. */
const MODULE_TARGETS: Readonly<Record<LoraModule, LoraTarget>> = {
  q_proj: 'qkv',
  k_proj: 'qkv',
  v_proj: 'qkv',
  o_proj: 'o',
  gate_proj: 'gateUp',
  up_proj: 'gateUp',
  down_proj: 'down',
};

export interface LoraShapes {
  hiddenSize: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
}

/** One fused projection's update in one layer. */
export interface LoraUpdate {
  layer: number;
  target: LoraTarget;
  /** Rows of A: the stacked ranks of the modules adapted here. */
  rank: number;
  inFeatures: number;
  outFeatures: number;
  /** [rank, inFeatures] row-major. */
  a: Float32Array;
  /** [outFeatures, rank] row-major, the scale folded in. */
  b: Float32Array;
}

/** Where a module's outputs start in its fused projection. */
function outputOffset(module: LoraModule, c: LoraShapes): number {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  if (module === 'k_proj') return q;
  if (module === 'v_proj') return q + kv;
  if (module === 'up_proj') return c.intermediateSize;
  return 0;
}

export function fusedShape(target: LoraTarget, c: LoraShapes): { inFeatures: number; outFeatures: number } {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  switch (target) {
    case 'qkv':
      return { inFeatures: c.hiddenSize, outFeatures: q + 2 * kv };
    case 'o':
      return { inFeatures: q, outFeatures: c.hiddenSize };
    case 'gateUp':
      return { inFeatures: c.hiddenSize, outFeatures: 2 * c.intermediateSize };
    case 'down':
      return { inFeatures: c.intermediateSize, outFeatures: c.hiddenSize };
  }
}

/** The adapter's updates, by layer then target (only those it adapts). */
export function loraUpdates(adapter: LoraAdapter, shapes: LoraShapes): LoraUpdate[] {
  const groups = new Map<string, LoraAdapter['modules']>();
  for (const m of adapter.modules) {
    const key = `${m.layer}:${MODULE_TARGETS[m.module]}`;
    const list = groups.get(key) ?? [];
    list.push(m);
    groups.set(key, list);
  }
  const updates: LoraUpdate[] = [];
  for (const modules of groups.values()) {
    const { layer } = modules[0];
    const target = MODULE_TARGETS[modules[0].module];
    const { inFeatures, outFeatures } = fusedShape(target, shapes);
    const rank = modules.reduce((r, m) => r + m.rank, 0);
    const a = new Float32Array(rank * inFeatures);
    const b = new Float32Array(outFeatures * rank);
    let col = 0;
    for (const m of modules) {
      a.set(m.a, col * inFeatures);
      const first = outputOffset(m.module, shapes);
      for (let o = 0; o < m.outFeatures; o++) {
        for (let k = 0; k < m.rank; k++) b[(first + o) * rank + col + k] = m.scale * m.b[o * m.rank + k];
      }
      col += m.rank;
    }
    updates.push({ layer, target, rank, inFeatures, outFeatures, a, b });
  }
  return updates;
}
