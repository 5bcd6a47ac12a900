// Turns a run's request records into the figures benchmarks report: aggregate output tok/s,
// requests/s, and TTFT / ITL / TPOT / end-to-end latency distributions.
import { distribution, type Distribution } from './percentiles.ts';
import type { RequestRecord } from './request-record.ts';
import type { LoadWait } from './load-average.ts';
import type { OtherCpu } from './other-cpu.ts';

export interface RunSummary {
  concurrency: number;
  requests: number;
  completed: number;
  errors: number;
  /** A few distinct error messages, for the report. */
  errorSamples: string[];
  /** Completed requests that produced fewer tokens than asked (the server stopped early). */
  shortOutputs: number;
  /** From the first request's start to the last one's end. */
  durationS: number;
  /** Prompt tokens of completed requests (server's count when it reports one). */
  inputTokens: number;
  outputTokens: number;
  /** Output tokens of completed requests per second of the run: the aggregate throughput. */
  outputTokPerS: number;
  /** Prompt and output tokens per second. */
  totalTokPerS: number;
  requestsPerS: number;
  ttftMs: Distribution;
  itlMs: Distribution;
  /** Time per output token after the first: (e2e - ttft) / (tokens - 1), one value per request. */
  tpotMs: Distribution;
  e2eMs: Distribution;
  /** Mean generated tokens per second a single request saw (tokens / e2e). */
  perRequestTokPerS: number | null;
  load: LoadWait;
  /** CPU other processes took during the level (null where it cannot be measured). */
  otherCpu: OtherCpu | null;
  /** Times the level was run (it is repeated when other processes took too much CPU); the figures are from the quietest. */
  attempts: number;
  startedAt: string;
}

export interface RunConditions {
  load: LoadWait;
  otherCpu: OtherCpu | null;
  attempts: number;
  startedAt: string;
}

export function summarize(records: RequestRecord[], concurrency: number, conditions: RunConditions): RunSummary {
  const done = records.filter((r) => r.ok);
  const failed = records.filter((r) => !r.ok);
  const start = Math.min(...records.map((r) => r.startMs));
  const end = Math.max(...records.map((r) => r.endMs));
  const durationS = records.length ? Math.max((end - start) / 1000, 1e-9) : 0;
  const outputTokens = done.reduce((s, r) => s + r.outputTokens, 0);
  const inputTokens = done.reduce((s, r) => s + (r.promptTokens ?? r.clientPromptTokens), 0);
  const tpot = done
    .filter((r) => r.ttftMs !== undefined && r.outputTokens > 1)
    .map((r) => (r.endMs - r.startMs - (r.ttftMs as number)) / (r.outputTokens - 1));
  const perRequest = done.filter((r) => r.endMs > r.startMs).map((r) => r.outputTokens / ((r.endMs - r.startMs) / 1000));
  return {
    concurrency,
    requests: records.length,
    completed: done.length,
    errors: failed.length,
    errorSamples: [...new Set(failed.map((r) => r.error ?? 'unknown error'))].slice(0, 3),
    shortOutputs: done.filter((r) => r.outputTokens < r.maxTokens).length,
    durationS,
    inputTokens,
    outputTokens,
    outputTokPerS: durationS ? outputTokens / durationS : 0,
    totalTokPerS: durationS ? (outputTokens + inputTokens) / durationS : 0,
    requestsPerS: durationS ? done.length / durationS : 0,
    ttftMs: distribution(done.flatMap((r) => (r.ttftMs === undefined ? [] : [r.ttftMs]))),
    itlMs: distribution(done.flatMap((r) => r.itlMs)),
    tpotMs: distribution(tpot),
    e2eMs: distribution(done.map((r) => r.endMs - r.startMs)),
    perRequestTokPerS: perRequest.length ? perRequest.reduce((s, v) => s + v, 0) / perRequest.length : null,
    ...conditions,
  };
}
