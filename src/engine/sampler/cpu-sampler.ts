// Picks one token per real row of a decode step's logits held in a JS-owned Float32Array
// [rows × vocab] (the native CPU path's forward pass writes them there), with the MLX Sampler's
// contract and reference.ts's semantics. The O(vocab) work per row runs in the native addon
// (native/cpu-kernels/sampler.cpp); the sparse parts stay in JS: row validation and planning
// (row-plan.ts, shared with the MLX sampler), bias and penalties on the few entries they name
// (host-penalty-state.ts), and each row's uniform draw from its (seed, step) key (step-key.ts).
import { cpuKernels, nativeKernelsUnavailable, type CpuKernelsAddon } from '../native/cpu-kernels.ts';
import { HostPenaltyStateCache, OverwrittenLogits } from './host-penalty-state.ts';
import { planRow, type RowPlan } from './row-plan.ts';
import type { SampledToken, SamplerRow, TopLogprobEntry } from './sampler.ts';
import { stepUniform } from './step-key.ts';
import { maskLogitsRow } from './token-bitmask.ts';

/** A row's raw log-softmax facts, taken before bias and penalties change its logits. */
interface RawLogprobs {
  logNormalizer: number;
  top?: TopLogprobEntry[];
}

export class CpuSampler {
  private readonly kernels: CpuKernelsAddon;
  private readonly penalties: HostPenaltyStateCache;
  private readonly overwritten = new OverwrittenLogits();

  constructor(readonly vocabSize: number) {
    if (!Number.isSafeInteger(vocabSize) || vocabSize < 1 || vocabSize > 2 ** 31 - 1) {
      throw new RangeError(`vocabSize must be a positive int32, got ${vocabSize}`);
    }
    const kernels = cpuKernels();
    if (!kernels) throw new Error(`the CPU sampler needs the native kernels: ${nativeKernelsUnavailable()}`);
    this.kernels = kernels;
    this.penalties = new HostPenaltyStateCache(vocabSize);
  }

  /**
   * logits: Float32Array holding rows.length × vocabSize values (row i for rows[i]; further whole
   * rows are padding); may be modified in place (today bias and penalties are written there and
   * undone before returning; grammar-disallowed tokens are left at -Infinity). null entries of
   * `rows` are padding too: neither read nor answered.
   * Returns one result per entry of `rows`.
   */
  sample(logits: Float32Array, rows: readonly SamplerRow[]): SampledToken[];
  sample(logits: Float32Array, rows: readonly (SamplerRow | null)[]): (SampledToken | null)[];
  sample(logits: Float32Array, rows: readonly (SamplerRow | null)[]): (SampledToken | null)[] {
    this.checkLogits(logits, rows.length);
    const plans: RowPlan[] = [];
    rows.forEach((row, i) => {
      if (row) plans.push(planRow(i, row, this.vocabSize));
    });
    // Penalty states check the token ids they are given; get them all before anything is written.
    const adjusting = plans
      .filter((p) => p.adjustsLogits)
      .map((p) => {
        const row = rows[p.batchRow]!;
        return { plan: p, state: this.penalties.get(row.params, row.promptTokenIds, row.outputTokenIds) };
      });

    const raw = new Map<RowPlan, RawLogprobs>();
    for (const p of plans) if (p.wantsLogprob) raw.set(p, this.rawLogprobs(logits, p));

    const tokens = new Map<RowPlan, number>();
    try {
      for (const { plan, state } of adjusting) state.apply(logits, plan.batchRow * this.vocabSize, this.overwritten);
      // Disallowed tokens stay at -Infinity afterwards: the chosen token is allowed, so its
      // logprob still reads its raw logit back.
      for (const p of plans) {
        const mask = rows[p.batchRow]?.allowedTokens;
        if (mask) maskLogitsRow(logits, p.batchRow * this.vocabSize, this.vocabSize, mask);
      }
      this.pickGreedy(
        logits,
        plans.filter((p) => p.route === 'greedy'),
        tokens,
      );
      for (const p of plans) {
        if (p.route === 'greedy') continue;
        const minP = rows[p.batchRow]!.params.minP;
        const u = stepUniform(p.stepKey);
        tokens.set(p, this.kernels.sampleRow(logits, p.batchRow * this.vocabSize, this.vocabSize, p.temperature, p.topK, p.topP, minP, u));
      }
    } finally {
      // Bias and penalties are undone: the chosen tokens' logprobs read the raw values back.
      this.overwritten.restore(logits);
    }

    const results: (SampledToken | null)[] = rows.map(() => null);
    for (const p of plans) {
      const tokenId = tokens.get(p)!;
      const out: SampledToken = { tokenId };
      const r = raw.get(p);
      if (r) {
        out.logprob = logits[p.batchRow * this.vocabSize + tokenId] - r.logNormalizer;
        if (r.top) out.topLogprobs = r.top;
      }
      results[p.batchRow] = out;
    }
    return results;
  }

  private checkLogits(logits: Float32Array, rowCount: number): void {
    if (!(logits instanceof Float32Array)) throw new TypeError('logits must be a Float32Array');
    if (logits.length % this.vocabSize !== 0) {
      throw new RangeError(`logits must hold whole rows of ${this.vocabSize} values, got ${logits.length} values`);
    }
    const batch = logits.length / this.vocabSize;
    if (rowCount > batch) throw new RangeError(`${rowCount} sampler rows for a logits batch of ${batch}`);
  }

  private rawLogprobs(logits: Float32Array, p: RowPlan): RawLogprobs {
    const offset = p.batchRow * this.vocabSize;
    const topIds = new Int32Array(p.topLogprobs);
    const logNormalizer = this.kernels.logprobStats(logits, offset, this.vocabSize, topIds);
    if (p.topLogprobs === 0) return { logNormalizer };
    return { logNormalizer, top: Array.from(topIds, (tokenId) => ({ tokenId, logprob: logits[offset + tokenId] - logNormalizer })) };
  }

  /** Greedy rows in one native call: the first index of each row's largest (adjusted) logit. */
  private pickGreedy(logits: Float32Array, greedy: RowPlan[], tokens: Map<RowPlan, number>): void {
    if (greedy.length === 0) return;
    const ids = new Int32Array(greedy.length);
    this.kernels.argmaxRows(
      logits,
      this.vocabSize,
      Int32Array.from(greedy, (p) => p.batchRow),
      ids,
    );
    greedy.forEach((p, i) => tokens.set(p, ids[i]));
  }
}
