// How many prompt tokens a step may compute while streams are decoding. A step's time is modelled
// as t ≈ a + b·(decode rows) + c·(prompt tokens), fitted online from measured steps (recursive
// least squares that slowly forgets, so the model follows the machine's load and the streams'
// growing contexts; a separate term for attended keys made the fit unstable, as keys grow with
// rows). A step with prompt work may take `stallRatio` times a decode-only step:
// arriving prompts are spread over several steps instead of freezing every running stream
// (vLLM's per-step token budget, chosen by time rather than a fixed count).

const FEATURES = 3;
/** Forgetting factor: the last few hundred steps dominate the fit. */
const FORGET = 0.995;

export class StepBudget {
  /** ms per unit of each feature: [per step, per decode row, per prompt token]. */
  private readonly theta = [5, 2, 2];
  private readonly p: number[][];

  constructor(
    private readonly maxTokens: number,
    private readonly stallRatio: number,
    private readonly minTokens = 16,
  ) {
    this.p = Array.from({ length: FEATURES }, (_, i) => Array.from({ length: FEATURES }, (_, j) => (i === j ? 1000 : 0)));
  }

  private static features(decodeRows: number, promptTokens: number): number[] {
    return [1, decodeRows, promptTokens];
  }

  /** Predicted ms of a step. */
  predict(decodeRows: number, promptTokens: number): number {
    const x = StepBudget.features(decodeRows, promptTokens);
    return x.reduce((s, v, i) => s + v * Math.max(this.theta[i], 0), 0);
  }

  /** Prompt tokens the next step may compute next to `decodeRows` decoding rows. */
  promptTokens(decodeRows: number): number {
    if (decodeRows === 0) return this.maxTokens;
    const decodeOnly = this.predict(decodeRows, 0);
    const perToken = Math.max(this.theta[2], 1e-3);
    const fit = Math.floor(((this.stallRatio - 1) * decodeOnly) / perToken);
    return Math.min(this.maxTokens, Math.max(this.minTokens, fit));
  }

  /** Records a measured step. */
  observe(decodeRows: number, promptTokens: number, ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    const x = StepBudget.features(decodeRows, promptTokens);
    const px = this.p.map((row) => row.reduce((s, v, j) => s + v * x[j], 0));
    const denom = FORGET + x.reduce((s, v, i) => s + v * px[i], 0);
    const gain = px.map((v) => v / denom);
    const error = ms - x.reduce((s, v, i) => s + v * this.theta[i], 0);
    for (let i = 0; i < FEATURES; i++) this.theta[i] += gain[i] * error;
    for (let i = 0; i < FEATURES; i++) {
      for (let j = 0; j < FEATURES; j++) this.p[i][j] = (this.p[i][j] - gain[i] * px[j]) / FORGET;
    }
  }
}
