// What the runner needs from a server API: send one request, report each arrival of generated
// tokens as it happens, and return the token counts the server reports.
import type { BenchRequest } from './workload.ts';

/** How "generate exactly max_tokens" is asked for, since servers differ. */
export type EosMode =
  /** `ignore_eos: true` (vLLM, SGLang, llama.cpp's server, this server). */
  | 'ignore'
  /** A logit bias of -100 on every end-of-generation token (for servers without ignore_eos, e.g. mlx_lm.server). */
  | 'bias'
  /** Let generation stop at the end-of-sequence token: outputs may be shorter than max_tokens. */
  | 'natural';

export interface GenerationSettings {
  stream: boolean;
  temperature: number;
  eos: EosMode;
  /** The ids 'bias' suppresses. */
  eosTokenIds: number[];
  /** Model name to send (OpenAI APIs require one). */
  model?: string;
  apiKey?: string;
  /** Per-request deadline. */
  timeoutMs: number;
}

export interface SendResult {
  /** Prompt tokens the server reports (undefined if it reports none). */
  promptTokens?: number;
  /** Generated tokens the server reports, or counted from the stream when it reports none. */
  outputTokens: number;
  finishReason?: string;
}

/**
 * `onTokens(n)` is called when n generated tokens arrive together (a streamed chunk; for APIs that
 * do not say how many tokens a chunk holds, n is 1 per chunk with text).
 */
export interface Backend {
  readonly endpoint: 'openai' | 'grpc';
  send(request: BenchRequest, onTokens: (n: number) => void): Promise<SendResult>;
  close(): Promise<void>;
}

export function eosLogitBias(settings: GenerationSettings): Record<string, number> | undefined {
  if (settings.eos !== 'bias') return undefined;
  return Object.fromEntries(settings.eosTokenIds.map((id) => [String(id), -100]));
}
