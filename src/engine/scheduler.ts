// Decides, each step, which waiting requests start their prompt processing. A pure function over
// the queue and the budgets, so its policy is testable without a model:
// - FIFO: a request is never overtaken by a later one (no starvation of long prompts).
// - Rows: running + admitted never exceeds the batch size.
// - Tokens: the new prompt tokens of one step stay within the prefill budget, so a long prompt
//   cannot freeze running streams; a prompt longer than the budget runs alone, in chunks.
// - Memory: admission stops when the KV the batch would hold (with some room to grow) exceeds the
//   memory budget. Growth beyond that is handled by preemption in the engine, as vLLM does, rather
//   than by reserving every request's maximum length up front.

export interface WaitingRequest {
  /** Prompt tokens still to compute (after the cached prefix). */
  newTokens: number;
  /** Prompt tokens in total (cached + new): columns the request occupies. */
  promptTokens: number;
}

export interface SchedulerBudget {
  /** Sequences currently decoding. */
  running: number;
  /** Longest current length among running sequences. */
  runningLongest: number;
  /** Columns of growth admission leaves room for. */
  growthHeadroom: number;
  /** --batch-size */
  maxRunning: number;
  /** Prompt tokens computed per step. */
  prefillTokens: number;
  /** Columns (cached + new tokens) a packed group of several prompts may span. */
  maxGroupColumns: number;
  /** Bytes the decode batch may hold. */
  kvBudgetBytes: number;
  /** Bytes a batch of `rows` rows and `columns` columns holds. */
  kvBytes(rows: number, columns: number): number;
}

/** How many of the queue's first requests to admit now (0 = none). */
export function admitCount(queue: readonly WaitingRequest[], b: SchedulerBudget): number {
  let tokens = 0;
  let columns = 0;
  let longest = b.runningLongest;
  let n = 0;
  for (const r of queue) {
    if (b.running + n + 1 > b.maxRunning) break;
    const nextLongest = Math.max(longest, r.promptTokens);
    // With nothing running the first request always starts: waiting cannot free any memory.
    const alone = b.running === 0 && n === 0;
    if (!alone && b.kvBytes(b.running + n + 1, nextLongest + b.growthHeadroom) > b.kvBudgetBytes) break;
    if (n > 0) {
      // Packing several prompts: all of them finish in this one step.
      if (tokens + r.newTokens > b.prefillTokens) break;
      if (columns + r.promptTokens > b.maxGroupColumns) break;
    }
    tokens += r.newTokens;
    columns += r.promptTokens;
    longest = nextLongest;
    n++;
    // A prompt that alone exceeds the budget is chunked and runs on its own.
    if (tokens > b.prefillTokens) break;
  }
  return n;
}
