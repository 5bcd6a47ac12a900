// Per-request Prometheus metrics, recorded by the service: every generation passes through it,
// whichever way it came (gRPC, gRPC-Web, Connect, or the OpenAI adapter, itself a gRPC client),
// and it sees each request from arrival to its last event. Names and buckets are vLLM's where
// there is one, so dashboards and alerts written for vLLM work unchanged; ours are `mlxserve:`.
import { Counter, Histogram, type Registry } from 'prom-client';
import type { FinishReason } from '../text/generation.ts';

/** vLLM's buckets (vllm/v1/metrics/loggers.py), in seconds. */
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
const ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const REQUEST_TIME_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];
/** Token counts: 1, 2, 5, 10, 20, 50, … up to a million. */
const TOKEN_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000];

/** vLLM's finished_reason label values (the engine stopped a tool-calling answer as any other: 'stop'). */
const FINISHED_REASONS: Record<Exclude<FinishReason, 'error'>, string> = {
  stop: 'stop',
  tool_calls: 'stop',
  length: 'length',
  cancelled: 'abort',
};

type ModelLabel = 'model_name';

export class RequestMetrics {
  private readonly promptTokens: Counter<ModelLabel>;
  private readonly generationTokens: Counter<ModelLabel>;
  private readonly success: Counter<ModelLabel | 'finished_reason'>;
  private readonly errors: Counter<'code'>;
  private readonly ttft: Histogram<ModelLabel>;
  private readonly interToken: Histogram<ModelLabel>;
  private readonly e2e: Histogram<ModelLabel>;
  private readonly queueTime: Histogram<ModelLabel>;
  private readonly promptLength: Histogram<ModelLabel>;
  private readonly generationLength: Histogram<ModelLabel>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.promptTokens = new Counter({
      name: 'vllm:prompt_tokens_total',
      help: 'Prompt tokens of the requests that entered the batch (cached ones included).',
      labelNames: ['model_name'],
      registers,
    });
    this.generationTokens = new Counter({
      name: 'vllm:generation_tokens_total',
      help: 'Tokens generated.',
      labelNames: ['model_name'],
      registers,
    });
    this.success = new Counter({
      name: 'vllm:request_success_total',
      help: 'Requests that finished, by finished_reason (stop, length, abort = cancelled).',
      labelNames: ['model_name', 'finished_reason'],
      registers,
    });
    this.errors = new Counter({
      name: 'mlxserve:request_errors_total',
      help: 'Generation requests refused or failed, by gRPC status code (invalid_argument, resource_exhausted, unavailable, …).',
      labelNames: ['code'],
      registers,
    });
    this.ttft = new Histogram({
      name: 'vllm:time_to_first_token_seconds',
      help: 'Time from arrival to the first generated token.',
      labelNames: ['model_name'],
      buckets: TTFT_BUCKETS,
      registers,
    });
    this.interToken = new Histogram({
      name: 'vllm:inter_token_latency_seconds',
      help: 'Time between consecutive generated tokens of a request.',
      labelNames: ['model_name'],
      buckets: ITL_BUCKETS,
      registers,
    });
    this.e2e = new Histogram({
      name: 'vllm:e2e_request_latency_seconds',
      help: 'Time from arrival to the last event of a finished request.',
      labelNames: ['model_name'],
      buckets: REQUEST_TIME_BUCKETS,
      registers,
    });
    this.queueTime = new Histogram({
      name: 'vllm:request_queue_time_seconds',
      help: 'Time from arrival until the request entered the batch.',
      labelNames: ['model_name'],
      buckets: REQUEST_TIME_BUCKETS,
      registers,
    });
    this.promptLength = new Histogram({
      name: 'vllm:request_prompt_tokens',
      help: 'Prompt tokens per request.',
      labelNames: ['model_name'],
      buckets: TOKEN_BUCKETS,
      registers,
    });
    this.generationLength = new Histogram({
      name: 'vllm:request_generation_tokens',
      help: 'Generated tokens per finished request.',
      labelNames: ['model_name'],
      buckets: TOKEN_BUCKETS,
      registers,
    });
  }

  /** The request entered the batch after waiting `queueSeconds`. */
  started(model: string, promptTokens: number, queueSeconds: number): void {
    const labels = { model_name: model };
    this.promptTokens.inc(labels, promptTokens);
    this.promptLength.observe(labels, promptTokens);
    this.queueTime.observe(labels, queueSeconds);
  }

  firstToken(model: string, seconds: number): void {
    this.ttft.observe({ model_name: model }, seconds);
  }

  /** `tokens` new tokens, `seconds` after the previous ones (undefined for the first). */
  tokens(model: string, tokens: number, seconds: number | undefined): void {
    const labels = { model_name: model };
    this.generationTokens.inc(labels, tokens);
    if (seconds !== undefined && tokens > 0) {
      for (let i = 0; i < tokens; i++) this.interToken.observe(labels, seconds / tokens);
    }
  }

  finished(model: string, reason: Exclude<FinishReason, 'error'>, generatedTokens: number, seconds: number): void {
    const labels = { model_name: model };
    this.success.inc({ ...labels, finished_reason: FINISHED_REASONS[reason] });
    this.e2e.observe(labels, seconds);
    this.generationLength.observe(labels, generatedTokens);
  }

  /** A request refused before it ran, or failed on the way; `code` as a lower-case gRPC status name. */
  failed(code: string): void {
    this.errors.inc({ code });
  }
}
