// Picks one token per real row of a decode step's logits [B, V], on the device, pulling only token
// ids and a few logprobs back to JS. Validates rows, applies bias and penalties, and hands the rest
// to SamplingStep (sampling-step.ts): one lazy graph per step, evaluated once, plus a further
// evaluation only for rows whose filters reach beyond their candidate tier.
//
// How: vocab-blocks.ts (why blocks), block-gumbel.ts (exact two-level Gumbel-max sampling),
// filtered-sampling.ts and candidate-filter.ts (min_p / top_k / top_p without a full sort),
// reference.ts (the semantics in plain JS, which the tests hold the device code to).
import type { EngineSamplingParams } from '../sampling-params.ts';
import { rowArgmax } from './batch-rows.ts';
import type { CandidateTier } from './filtered-sampling.ts';
import { applyLogitAdjustments } from './logit-adjustments.ts';
import { PenaltyStateCache } from './penalty-state.ts';
import { planRow, type RowPlan } from './row-plan.ts';
import { SamplingStep } from './sampling-step.ts';
import { maskLogitsRow } from './token-bitmask.ts';
import { blockLayout, type BlockLayout } from './vocab-blocks.ts';
import { mx, type MxArray } from '../mlx.ts';

export type { CandidateTier } from './filtered-sampling.ts';

export interface SamplerRow {
  params: EngineSamplingParams;
  /** The repetition penalty applies to prompt and output tokens (vLLM semantics). */
  promptTokenIds: readonly number[];
  /**
   * Tokens generated so far; presence/frequency penalties apply to these (OpenAI semantics) and
   * its length is the step of the random stream. Pass the same array, appended to, every step:
   * the sampler keeps per-request penalty bookkeeping keyed by it.
   */
  outputTokenIds: readonly number[];
  /** Per-request seed; the engine picks a random one when the client gave none. */
  seed: number;
  /**
   * Structured output: bitmask of the tokens the grammar allows (token-bitmask.ts); the others
   * cannot be sampled. Applied after bias and penalties; log probabilities stay those of the raw
   * logits.
   */
  allowedTokens?: Int32Array;
}

export interface TopLogprobEntry {
  tokenId: number;
  logprob: number;
}

export interface SampledToken {
  tokenId: number;
  /** log-softmax of the raw logits at tokenId, when logprobs or top_logprobs was asked for. */
  logprob?: number;
  /** The top_logprobs most likely tokens under the raw logits, most likely first. */
  topLogprobs?: TopLogprobEntry[];
}

export interface SamplerOptions {
  /** Tokens per vocabulary block (vocab-blocks.ts). */
  blockSize?: number;
  /** Candidate tiers tried in order for filtered rows before a sort of the whole row. */
  candidateTiers?: CandidateTier[];
}

const DEFAULT_BLOCK_SIZE = 32;
/**
 * Chosen on 256 SmolLM2-135M decode steps: the fraction of rows whose whole top_p set the tiers
 * hold, cumulatively, was 97% / 100% / 100% at temperature 0.7, top_p 0.9, and 58% / 81% / 100%
 * at temperature 1, top_p 0.95 (the hardest common setting). Costs per row at V = 49152 on a
 * 2-core x86 box: ~0.3 ms, ~1 ms, ~3 ms; an exhaustive sort after them ~7 ms or more.
 */
const DEFAULT_TIERS: CandidateTier[] = [
  { blocks: 64, tokens: 256 },
  { blocks: 256, tokens: 1024 },
  { blocks: Infinity, tokens: 8192 },
];

export class Sampler {
  readonly layout: BlockLayout;
  private readonly tiers: CandidateTier[];
  private readonly penalties: PenaltyStateCache;

  constructor(
    readonly vocabSize: number,
    options: SamplerOptions = {},
  ) {
    this.layout = blockLayout(vocabSize, options.blockSize ?? DEFAULT_BLOCK_SIZE);
    const tiers = options.candidateTiers ?? DEFAULT_TIERS;
    for (const t of tiers) {
      const count = (x: number) => x === Infinity || (Number.isSafeInteger(x) && x >= 1);
      if (!count(t.blocks) || !count(t.tokens)) {
        throw new RangeError(`candidate tiers need positive integer blocks and tokens, got ${JSON.stringify(t)}`);
      }
    }
    this.tiers = tiers.map((t) => ({ blocks: Math.min(t.blocks, this.layout.numBlocks), tokens: t.tokens }));
    this.penalties = new PenaltyStateCache(vocabSize);
  }

  /**
   * logits: float [B, V]. rows[i] describes logits row i; null entries and rows past rows.length
   * are padding and are neither read nor answered. Returns one result per entry of `rows`.
   */
  sample(logits: MxArray, rows: readonly SamplerRow[]): SampledToken[];
  sample(logits: MxArray, rows: readonly (SamplerRow | null)[]): (SampledToken | null)[];
  sample(logits: MxArray, rows: readonly (SamplerRow | null)[]): (SampledToken | null)[] {
    const input = this.checkLogits(logits, rows.length);
    const plans: RowPlan[] = [];
    rows.forEach((row, i) => {
      if (row) plans.push(planRow(i, row, this.vocabSize));
    });
    const results: (SampledToken | null)[] = rows.map(() => null);
    if (plans.length === 0) return results;
    const masked = this.mask(input, rows);

    if (plans.every((p) => p.route === 'greedy' && !p.adjustsLogits && !p.wantsLogprob)) {
      // The common all-greedy step: one argmax over the batch.
      const ids = rowArgmax(
        masked,
        plans.map((p) => p.batchRow),
      ).tolist() as number[];
      plans.forEach((p, i) => (results[p.batchRow] = { tokenId: ids[i] }));
      return results;
    }

    const step = new SamplingStep(input, this.adjust(masked, rows, plans), plans, this.layout, this.tiers);
    step.run();
    for (const p of plans) results[p.batchRow] = step.result(p);
    return results;
  }

  private checkLogits(logits: MxArray, rowCount: number): MxArray {
    if (logits.ndim !== 2 || logits.shape[1] !== this.vocabSize) {
      throw new RangeError(`logits must have shape [B, ${this.vocabSize}], got [${logits.shape.join(', ')}]`);
    }
    if (rowCount > logits.shape[0]) {
      throw new RangeError(`${rowCount} sampler rows for a logits batch of ${logits.shape[0]}`);
    }
    if (!mx.issubdtype(logits.dtype, mx.floating)) throw new TypeError('logits must be a floating-point array');
    return logits.dtype === mx.float32 ? logits : logits.astype(mx.float32);
  }

  /** The logits with the grammar-disallowed tokens of constrained rows at -Infinity. */
  private mask(logits: MxArray, rows: readonly (SamplerRow | null)[]): MxArray {
    if (!rows.some((r) => r?.allowedTokens)) return logits;
    const V = this.vocabSize;
    const additive = new Float32Array(logits.shape[0] * V);
    rows.forEach((r, i) => {
      if (r?.allowedTokens) maskLogitsRow(additive, i * V, V, r.allowedTokens);
    });
    return mx.add(logits, mx.array(Array.from(additive), mx.float32).reshape(logits.shape));
  }

  private adjust(logits: MxArray, rows: readonly (SamplerRow | null)[], plans: RowPlan[]): MxArray {
    const adjusting = plans
      .filter((p) => p.adjustsLogits)
      .map((p) => {
        const row = rows[p.batchRow]!;
        return { batchRow: p.batchRow, state: this.penalties.get(row.params, row.promptTokenIds, row.outputTokenIds) };
      });
    return adjusting.length ? applyLogitAdjustments(logits, adjusting) : logits;
  }
}
