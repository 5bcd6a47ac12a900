// One request's measurements: when it started and ended, when its first token came (TTFT), the
// gaps between later tokens (ITL) and the token counts.

export interface RequestRecord {
  ok: boolean;
  error?: string;
  /** ms since the run started. */
  startMs: number;
  endMs: number;
  /** Time to first token (streaming only). */
  ttftMs?: number;
  /** Inter-token latencies: each gap between arrivals, split evenly over the tokens that arrived together. */
  itlMs: number[];
  /** Prompt tokens by the client's tokenizer. */
  clientPromptTokens: number;
  /** Prompt tokens the server reported. */
  promptTokens?: number;
  outputTokens: number;
  maxTokens: number;
  finishReason?: string;
}

/** Collects a request's token arrivals as they happen; `finish` turns them into a record. */
export class RequestTimer {
  private first?: number;
  private last?: number;
  private readonly itl: number[] = [];
  readonly startMs: number;

  constructor(
    private readonly clock: () => number,
    private readonly runStart: number,
  ) {
    this.startMs = clock() - runStart;
  }

  /** n tokens arrived now. */
  tokens(n: number): void {
    if (n <= 0) return;
    const now = this.clock() - this.runStart;
    if (this.first === undefined) this.first = now;
    else {
      const gap = (now - (this.last as number)) / n;
      for (let i = 0; i < n; i++) this.itl.push(gap);
    }
    this.last = now;
  }

  finish(
    fields: Pick<RequestRecord, 'ok' | 'error' | 'clientPromptTokens' | 'promptTokens' | 'outputTokens' | 'maxTokens' | 'finishReason'>,
    streamed: boolean,
  ): RequestRecord {
    const endMs = this.clock() - this.runStart;
    return {
      ...fields,
      startMs: this.startMs,
      endMs,
      ttftMs: streamed && this.first !== undefined ? this.first - this.startMs : undefined,
      itlMs: this.itl,
    };
  }
}
