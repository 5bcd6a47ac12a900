// Runs a list of requests against a backend with a fixed number in flight (closed loop: each of
// `concurrency` workers sends its next request as soon as its previous one ends), with a progress bar.
import cliProgress from 'cli-progress';
import type { Backend } from './backend.ts';
import { RequestTimer, type RequestRecord } from './request-record.ts';
import type { BenchRequest } from './workload.ts';

export interface RunOptions {
  concurrency: number;
  /** Label shown before the progress bar. */
  label?: string;
  /** Draw a progress bar on stderr (when it is a terminal). */
  progress: boolean;
  streamed: boolean;
}

export async function runRequests(backend: Backend, requests: BenchRequest[], opts: RunOptions): Promise<RequestRecord[]> {
  const clock = () => performance.now();
  const runStart = clock();
  const records: RequestRecord[] = new Array(requests.length);
  const bar = opts.progress
    ? new cliProgress.SingleBar(
        {
          format: `${opts.label ?? `c${opts.concurrency}`} |{bar}| {value}/{total} requests | {tokps} tok/s | {errors} errors | {duration_formatted}`,
          stream: process.stderr,
          hideCursor: true,
          fps: 4,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let tokens = 0;
  let errors = 0;
  const tokps = () => (tokens / Math.max((clock() - runStart) / 1000, 1e-3)).toFixed(1);
  bar?.start(requests.length, 0, { tokps: '0.0', errors: 0 });

  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= requests.length) return;
      const r = requests[i];
      const timer = new RequestTimer(clock, runStart);
      const base = { clientPromptTokens: r.promptTokens, maxTokens: r.maxTokens };
      try {
        const sent = await backend.send(r, (n) => {
          timer.tokens(n);
          tokens += n;
        });
        records[i] = timer.finish(
          { ...base, ok: true, promptTokens: sent.promptTokens, outputTokens: sent.outputTokens, finishReason: sent.finishReason },
          opts.streamed,
        );
      } catch (err) {
        errors++;
        records[i] = timer.finish({ ...base, ok: false, error: (err as Error).message ?? String(err), outputTokens: 0 }, opts.streamed);
      }
      bar?.increment(1, { tokps: tokps(), errors });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(opts.concurrency, requests.length) }, worker));
  } finally {
    bar?.stop();
  }
  return records;
}
