// A benchmark: for each concurrency level, wait for a quiet machine, warm the server up, run the
// measured requests and summarize them. Used by bench/bench-client.ts and its test.
import type { Backend, EosMode } from './backend.ts';
import { GrpcBackend } from './grpc-backend.ts';
import { waitForLowLoad, type LoadWaitOptions } from './load-average.ts';
import { cpuSnapshot, otherCpuBetween } from './other-cpu.ts';
import { firstServedModel, OpenAIBackend } from './openai-backend.ts';
import type { PromptTokenizer } from './prompt-tokenizer.ts';
import { headlineOf, machineDescription, type BenchReport, type BenchSettings } from './report.ts';
import { runRequests } from './runner.ts';
import type { DatasetEntry } from './sharegpt.ts';
import { summarize, type RunSummary } from './summary.ts';
import { buildWorkload, DEFAULT_MAX_TOKENS, DEFAULT_PROMPT_TOKENS, type WorkloadSpec } from './workload.ts';

/** How many requests a level sends: a fixed number, or a multiple of its concurrency. */
export type RequestCount = { fixed: number } | { perSlot: number; atLeast: number };

export function requestsFor(count: RequestCount, concurrency: number): number {
  return 'fixed' in count ? count.fixed : Math.max(count.atLeast, count.perSlot * concurrency);
}

export function describeRequestCount(count: RequestCount): string {
  return 'fixed' in count ? String(count.fixed) : `${count.perSlot} per concurrency slot, at least ${count.atLeast}`;
}

export interface BenchmarkOptions {
  endpoint: 'openai' | 'grpc';
  url: string;
  model?: string;
  apiKey?: string;
  levels: number[];
  requests: RequestCount;
  stream: boolean;
  temperature: number;
  eos: EosMode;
  promptFormat: 'chat' | 'text';
  promptTokens?: number;
  maxTokens?: number;
  dataset?: { path: string; entries: DatasetEntry[] };
  seed: number;
  /** Warm-up requests before each level (default: the level's concurrency); their results are dropped. */
  warmup?: number;
  warmupMaxTokens: number;
  timeoutMs: number;
  load: Omit<LoadWaitOptions, 'log'>;
  /** The server's process id when it runs on this machine: its CPU is then not counted as other processes'. */
  serverPid?: number;
  /** Run a level again when other processes averaged more than this many cores during it. */
  maxOtherCores?: number;
  /** How many times a level may be run again. */
  retries: number;
  progress: boolean;
  label: string;
  /** How the server was started, for the record. */
  serverInfo?: string;
  command: string;
  /** The c8/c1 target the headline is judged against. */
  headlineTarget?: number;
  log?: (line: string) => void;
}

async function openBackend(o: BenchmarkOptions, tok: PromptTokenizer): Promise<{ backend: Backend; model?: string }> {
  const settings = {
    stream: o.stream,
    temperature: o.temperature,
    eos: o.eos,
    eosTokenIds: tok.eosTokenIds,
    apiKey: o.apiKey,
    timeoutMs: o.timeoutMs,
  };
  if (o.endpoint === 'grpc') return { backend: new GrpcBackend(o.url, { ...settings, model: o.model }), model: o.model };
  const model = o.model ?? (await firstServedModel(o.url, o.apiKey));
  return { backend: new OpenAIBackend(o.url, { ...settings, model }), model };
}

export async function runBenchmark(o: BenchmarkOptions, tok: PromptTokenizer): Promise<BenchReport> {
  const log = o.log ?? (() => {});
  const { backend, model } = await openBackend(o, tok);
  const spec: WorkloadSpec = {
    format: o.promptFormat,
    promptTokens: o.promptTokens,
    maxTokens: o.maxTokens,
    dataset: o.dataset?.entries,
    seed: o.seed,
  };
  const settings: BenchSettings = {
    endpoint: o.endpoint,
    url: o.url,
    model,
    stream: o.stream,
    temperature: o.temperature,
    eos: o.eos,
    promptFormat: o.promptFormat,
    promptTokens: o.promptTokens ?? (o.dataset ? null : DEFAULT_PROMPT_TOKENS),
    maxTokens: o.maxTokens ?? (o.dataset ? null : DEFAULT_MAX_TOKENS),
    dataset: o.dataset?.path ?? null,
    seed: o.seed,
    warmup: o.warmup === undefined ? 'one per concurrency slot' : String(o.warmup),
    requests: describeRequestCount(o.requests),
    maxLoad: o.load.maxLoad,
    maxOtherCores: o.maxOtherCores ?? null,
    retries: o.maxOtherCores === undefined ? 0 : o.retries,
  };
  const runs: RunSummary[] = [];
  try {
    for (const [i, c] of o.levels.entries()) {
      let best: RunSummary | undefined;
      for (let attempt = 1; attempt <= 1 + o.retries; attempt++) {
        // Wait first: the limit is about other jobs on the machine, and the warm-up's own load would hide them.
        const load = await waitForLowLoad({ ...o.load, log });
        const warmup = o.warmup ?? c;
        if (warmup > 0) {
          const warm = buildWorkload(
            tok,
            { ...spec, maxTokens: Math.min(o.warmupMaxTokens, o.maxTokens ?? o.warmupMaxTokens) },
            warmup,
            1000 + 10 * i + attempt,
          );
          const records = await runRequests(backend, warm, {
            concurrency: c,
            label: `c${c} warm-up`,
            progress: o.progress,
            streamed: o.stream,
          });
          const failed = records.filter((r) => !r.ok);
          if (failed.length === records.length) throw new Error(`every warm-up request failed: ${failed[0].error}`);
        }
        // Fresh prompts for every attempt, so a repeat is not served from the server's prompt cache.
        const requests = buildWorkload(tok, spec, requestsFor(o.requests, c), 2000 + 10 * i + attempt);
        const startedAt = new Date().toISOString();
        const cpuBefore = cpuSnapshot(o.serverPid);
        const wallStart = performance.now();
        const records = await runRequests(backend, requests, { concurrency: c, label: `c${c}`, progress: o.progress, streamed: o.stream });
        const otherCpu = otherCpuBetween(cpuBefore, cpuSnapshot(o.serverPid), (performance.now() - wallStart) / 1000);
        const run = summarize(records, c, { load, otherCpu, attempts: attempt, startedAt });
        log(
          `c${c}: ${run.outputTokPerS.toFixed(1)} output tok/s, ${run.requestsPerS.toFixed(2)} req/s, TTFT p50 ${run.ttftMs.p50?.toFixed(0) ?? '–'} ms, ` +
            `${run.errors} errors${otherCpu ? `, other processes ${otherCpu.cores.toFixed(2)} cores` : ''}`,
        );
        if (!best || (otherCpu?.cores ?? 0) < (best.otherCpu?.cores ?? 0)) best = { ...run };
        best.attempts = attempt;
        if (o.maxOtherCores === undefined || !otherCpu || otherCpu.cores <= o.maxOtherCores) break;
        if (attempt <= o.retries)
          log(`c${c}: other processes took ${otherCpu.cores.toFixed(2)} cores (limit ${o.maxOtherCores}); measuring again`);
      }
      runs.push(best as RunSummary);
    }
  } finally {
    await backend.close();
  }
  return {
    label: o.label,
    date: new Date().toISOString().slice(0, 10),
    machine: machineDescription(),
    command: o.command,
    serverInfo: o.serverInfo,
    settings,
    runs,
    headline: headlineOf(runs, o.headlineTarget),
  };
}
