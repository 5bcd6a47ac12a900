// One Sampler.sample call for rows that are not all plain greedy: builds the step's lazy graph
// (greedy argmax, the softmax pass, candidate tiers, logprobs), evaluates it once, then sends rows
// their tier could not certify up the tier ladder, one more evaluation per rung still needed.
import { divideByTemperature, rowArgmax, selectRows } from './batch-rows.ts';
import { sampleFromBlocks } from './block-gumbel.ts';
import { sampleFiltered, type CandidateTier } from './filtered-sampling.ts';
import { gumbelRows } from './random-stream.ts';
import { chosenLogprob, rawTopLogprobs } from './raw-logprobs.ts';
import { Readback } from './readback.ts';
import type { RowPlan } from './row-plan.ts';
import type { SampledToken, TopLogprobEntry } from './sampler.ts';
import { softmaxMass } from './softmax-mass.ts';
import { toBlocks, type BlockLayout } from './vocab-blocks.ts';
import { mx, type MxArray } from '../mlx.ts';

/** [n, 1] values per row of some plans, looked up by plan. */
class RowValues {
  private readonly index: Map<RowPlan, number>;

  constructor(
    readonly array: MxArray,
    plans: readonly RowPlan[],
  ) {
    this.index = new Map(plans.map((p, i) => [p, i]));
  }

  /** Rows for these plans; plans without a value read row 0 (callers ignore those). */
  for(plans: readonly RowPlan[]): MxArray {
    return mx.take(
      this.array,
      mx.array(
        plans.map((p) => this.index.get(p) ?? 0),
        mx.int32,
      ),
      0,
    );
  }
}

export class SamplingStep {
  private readonly tokens = new Map<RowPlan, number>();
  private readonly chosenLogprobs = new Map<RowPlan, number>();
  private readonly topLogprobs = new Map<RowPlan, TopLogprobEntry[]>();
  /** Candidate tiers for this step; null is the exhaustive sort. */
  private readonly ladder: (CandidateTier | null)[];
  private readonly rung = new Map<RowPlan, number>();
  private fullLogMass: RowValues | null = null;
  private logNormalizer: RowValues | null = null;

  constructor(
    private readonly raw: MxArray,
    private readonly adjusted: MxArray,
    private readonly plans: readonly RowPlan[],
    private readonly layout: BlockLayout,
    tiers: readonly CandidateTier[],
  ) {
    // top_k rows that fit the first tier's blocks get a tier of exactly their size: the top k
    // tokens always lie in the k blocks with the largest maxima.
    const fitsFirst = (p: RowPlan) => p.route === 'filtered' && p.topK > 0 && tiers.length > 0 && p.topK <= tiers[0].blocks;
    const kMax = Math.max(0, ...plans.filter(fitsFirst).map((p) => p.topK));
    this.ladder = [...(kMax ? [{ blocks: kMax, tokens: kMax }] : []), ...tiers, null];
    for (const p of plans) {
      if (p.route === 'filtered') this.rung.set(p, fitsFirst(p) ? 0 : this.nextRung(p, kMax ? 0 : -1));
    }
  }

  run(): void {
    const readback = new Readback();
    const byRoute = (route: RowPlan['route']) => this.plans.filter((p) => p.route === route);
    const greedy = byRoute('greedy');
    const unfiltered = byRoute('unfiltered');
    const filtered = byRoute('filtered');
    const sampled = [...unfiltered, ...filtered];
    const noise = sampled.length
      ? gumbelRows(
          sampled.map((p) => p.stepKey),
          this.noiseLength,
        )
      : null;
    const noiseOf = (plans: RowPlan[]) =>
      selectRows(
        noise!,
        plans.map((p) => sampled.indexOf(p)),
      );

    const order: RowPlan[] = [];
    const tokenParts: MxArray[] = [];
    const keep = (plans: RowPlan[], tokens: MxArray) => {
      order.push(...plans);
      tokenParts.push(tokens.astype(mx.int32));
    };
    if (greedy.length)
      keep(
        greedy,
        rowArgmax(
          this.adjusted,
          greedy.map((p) => p.batchRow),
        ),
      );
    // One softmax pass serves the unfiltered rows (block masses) and top_p-only rows (normalizer).
    const needsMass = filtered.filter((p) => p.needsFullMass);
    const massPlans = [...unfiltered, ...needsMass];
    if (massPlans.length) {
      const pass = this.softmaxRows(massPlans);
      if (unfiltered.length) {
        const head = (x: MxArray) => (needsMass.length ? x.index(mx.Slice(0, unfiltered.length)) : x);
        keep(
          unfiltered,
          sampleFromBlocks({
            blocks: toBlocks(head(pass.scaled), this.layout),
            blockIds: null,
            // Block masses normalized by the softmax: a constant shift per row, the same distribution.
            blockLogMass: mx.log(mx.sum(toBlocks(head(pass.probs), this.layout, 0), -1)),
            noise: noiseOf(unfiltered),
            numBlocks: this.layout.numBlocks,
          }),
        );
      }
      if (needsMass.length) this.fullLogMass = new RowValues(pass.logNormalizer, massPlans);
    }
    const pending: RowPlan[] = [];
    for (const [rung, plans] of this.byRung(filtered)) {
      const out = this.sampleRung(rung, plans, noiseOf(plans));
      keep(plans, out.tokens);
      readback.int(out.certified, (flags) => plans.forEach((p, i) => flags[i] || pending.push(p)));
    }
    const tokens = tokenParts.length === 1 ? tokenParts[0] : mx.concatenate(tokenParts, 0);
    readback.int(tokens, (ids) => order.forEach((p, i) => this.tokens.set(p, ids[i])));
    this.readLogprobs(readback, order, tokens);
    readback.run();
    this.retry(pending);
  }

  result(p: RowPlan): SampledToken {
    const out: SampledToken = { tokenId: this.tokens.get(p)! };
    if (p.wantsLogprob) out.logprob = this.chosenLogprobs.get(p)!;
    const top = this.topLogprobs.get(p);
    if (top) out.topLogprobs = top;
    return out;
  }

  private get noiseLength(): number {
    return this.layout.numBlocks + this.layout.blockSize;
  }

  /** Rows divided by their temperatures, with their softmax and log-normalizer. */
  private softmaxRows(plans: RowPlan[]) {
    const scaled = divideByTemperature(
      selectRows(
        this.adjusted,
        plans.map((p) => p.batchRow),
      ),
      plans.map((p) => p.temperature),
    );
    return { scaled, ...softmaxMass(scaled) };
  }

  /** The first rung after `after` whose tier can hold the row's top_k (the last rung holds anything). */
  private nextRung(p: RowPlan, after: number): number {
    for (let r = after + 1; r < this.ladder.length; r++) {
      const tier = this.ladder[r];
      if (!tier || p.topK <= tier.tokens) return r;
    }
    return this.ladder.length - 1;
  }

  private byRung(plans: RowPlan[]): Map<number, RowPlan[]> {
    const groups = new Map<number, RowPlan[]>();
    for (const p of plans) {
      const r = this.rung.get(p)!;
      groups.set(r, [...(groups.get(r) ?? []), p]);
    }
    return groups;
  }

  private sampleRung(rung: number, plans: RowPlan[], noise: MxArray) {
    const fullLogMass = this.fullLogMass && plans.some((p) => p.needsFullMass) ? this.fullLogMass.for(plans) : null;
    return sampleFiltered({ logits: this.adjusted, plans, noise, fullLogMass, layout: this.layout, tier: this.ladder[rung] });
  }

  /** Raw logprobs: the chosen token's (from `tokens`, laid out as `order`) and the top alternatives. */
  private readLogprobs(readback: Readback, order: RowPlan[], tokens: MxArray): void {
    const plans = this.plans.filter((p) => p.wantsLogprob);
    if (!plans.length) return;
    const rawRows = selectRows(
      this.raw,
      plans.map((p) => p.batchRow),
    );
    const count = Math.max(...plans.map((p) => p.topLogprobs));
    const top = rawTopLogprobs(rawRows, this.layout, count);
    this.logNormalizer = new RowValues(top.logNormalizer, plans);
    const rowTokens = mx.take(
      tokens,
      mx.array(
        plans.map((p) => order.indexOf(p)),
        mx.int32,
      ),
      0,
    );
    readback.float(chosenLogprob(rawRows, top.logNormalizer, rowTokens), (v) => plans.forEach((p, i) => this.chosenLogprobs.set(p, v[i])));
    if (!top.values || !top.ids) return;
    let ids: number[] = [];
    readback.int(top.ids, (v) => (ids = v));
    readback.float(top.values, (values) =>
      plans.forEach((p, i) => {
        if (p.topLogprobs === 0) return;
        const entries = Array.from({ length: count }, (_, j) => ({ tokenId: ids[i * count + j], logprob: values[i * count + j] }))
          // Block padding (-inf) can only surface when real logits are -inf too; never report it.
          .filter((e) => e.tokenId < this.layout.vocabSize);
        entries.sort((a, b) => b.logprob - a.logprob || a.tokenId - b.tokenId);
        this.topLogprobs.set(p, entries.slice(0, p.topLogprobs));
      }),
    );
  }

  /** Rows their tier could not certify go up the ladder, one evaluation per rung still needed. */
  private retry(pending: RowPlan[]): void {
    while (pending.length) {
      for (const p of pending) this.rung.set(p, this.nextRung(p, this.rung.get(p)!));
      const next: RowPlan[] = [];
      const readback = new Readback();
      for (const [rung, plans] of this.byRung(pending)) {
        // The same noise as before: it depends only on each row's seed and step.
        const out = this.sampleRung(
          rung,
          plans,
          gumbelRows(
            plans.map((p) => p.stepKey),
            this.noiseLength,
          ),
        );
        readback.int(out.tokens, (ids) => plans.forEach((p, i) => this.tokens.set(p, ids[i])));
        readback.int(out.certified, (flags) => plans.forEach((p, i) => flags[i] || next.push(p)));
        const lp = plans.filter((p) => p.wantsLogprob);
        if (lp.length) {
          const rowTokens = mx.take(
            out.tokens,
            mx.array(
              lp.map((p) => plans.indexOf(p)),
              mx.int32,
            ),
            0,
          );
          const rawRows = selectRows(
            this.raw,
            lp.map((p) => p.batchRow),
          );
          readback.float(chosenLogprob(rawRows, this.logNormalizer!.for(lp), rowTokens), (v) =>
            lp.forEach((p, i) => this.chosenLogprobs.set(p, v[i])),
          );
        }
      }
      readback.run();
      pending = next;
    }
  }
}
