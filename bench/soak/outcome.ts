// What one soak request is and how it ended. "failed" is reserved for the unexpected: a request the
// client cancelled or walked away from is not a failure, and an overload refusal (429 /
// RESOURCE_EXHAUSTED) is counted on its own.
import { Code, GenerationServiceError } from '../../clients/typescript/src/index.ts';

/** The kinds of request the soak mixes. */
export const KINDS = [
  /** OpenAI chat, streamed to the end (SDK). */
  'openai-stream',
  /** OpenAI chat, whole answer (SDK). */
  'openai-chat',
  /** OpenAI /v1/completions with a text prompt, whole answer (SDK). */
  'openai-completion',
  /** OpenAI chat stream aborted mid-way through the SDK's AbortSignal. */
  'openai-cancel',
  /** Raw HTTP request (streamed or not) whose socket the client destroys before the answer ends. */
  'openai-disconnect',
  /** gRPC GenerateStream to the end (TypeScript client `generate`). */
  'grpc-stream',
  /** gRPC Complete (TypeScript client `complete`). */
  'grpc-complete',
  /** Two or three requests on one bidirectional Generate stream (client `session`); one is cancelled with CancelGeneration. */
  'grpc-session',
  /** gRPC GenerateStream cancelled mid-way (AbortSignal: the HTTP/2 stream is reset). */
  'grpc-cancel',
  /** gRPC GenerateStream whose HTTP/2 connection the client drops mid-way. */
  'grpc-disconnect',
] as const;
export type Kind = (typeof KINDS)[number];

export type Result = 'completed' | 'cancelled' | 'disconnected' | 'refused' | 'failed';
export const RESULTS: readonly Result[] = ['completed', 'cancelled', 'disconnected', 'refused', 'failed'];

export interface Outcome {
  kind: Kind;
  result: Result;
  /** Why, for 'failed' and 'refused'. */
  error?: string;
  /** Generated tokens the server reported (completed requests). */
  outputTokens: number;
  /** From sending to the end of the answer (or to the cancel / disconnect). */
  ms: number;
}

/** Whether an error is the server refusing work because it is full (not a failure). */
export function isOverloadRefusal(err: unknown): boolean {
  if (err instanceof GenerationServiceError) return err.code === Code.ResourceExhausted;
  return (err as { status?: unknown } | null)?.status === 429;
}

/** A short, stable description of an error for the failure table. */
export function describeError(err: unknown): string {
  if (err instanceof GenerationServiceError) return `${err.codeName}: ${err.message}`;
  const e = err as { status?: number; name?: string; message?: string };
  const text = `${e?.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e?.message ?? String(err)}`;
  return (e?.status ? `HTTP ${e.status}: ${text}` : text).slice(0, 300);
}

/** The outcome of a request that threw: refused when the server was full, otherwise failed. */
export function thrownOutcome(kind: Kind, err: unknown, ms: number): Outcome {
  return { kind, result: isOverloadRefusal(err) ? 'refused' : 'failed', error: describeError(err), outputTokens: 0, ms };
}

/**
 * Checks a completed answer against what was asked: with ignore_eos exactly max_tokens and
 * finish 'length'; otherwise 'stop' or 'length', never more than max_tokens. Returns the problem, if any.
 */
export function answerProblem(
  answer: { outputTokens: number; finishReason?: string },
  asked: { maxTokens: number; ignoreEos: boolean },
): string | undefined {
  const { outputTokens: n, finishReason: why } = answer;
  if (why !== 'stop' && why !== 'length') return `finish reason ${why ?? '(none)'}`;
  if (asked.ignoreEos && (why !== 'length' || n !== asked.maxTokens))
    return `ignore_eos answer ended with ${why} after ${n} of ${asked.maxTokens} tokens`;
  if (n > asked.maxTokens) return `${n} tokens for max_tokens ${asked.maxTokens}`;
  if (why === 'length' && n !== asked.maxTokens) return `finish 'length' after ${n} of ${asked.maxTokens} tokens`;
  return undefined;
}

/** A finished answer as an outcome: completed when it is what was asked, else failed. */
export function judgeAnswer(
  kind: Kind,
  answer: { outputTokens: number; finishReason?: string },
  asked: { maxTokens: number; ignoreEos: boolean },
  ms: number,
): Outcome {
  const problem = answerProblem(answer, asked);
  return problem
    ? { kind, result: 'failed', error: problem, outputTokens: answer.outputTokens, ms }
    : { kind, result: 'completed', outputTokens: answer.outputTokens, ms };
}

/** Sends a request that should run to its end (`send`) and judges what comes back. */
export async function runToEnd(
  kind: Kind,
  asked: { maxTokens: number; ignoreEos: boolean },
  send: () => Promise<{ outputTokens: number; finishReason?: string }>,
): Promise<Outcome> {
  const t0 = performance.now();
  try {
    return judgeAnswer(kind, await send(), asked, performance.now() - t0);
  } catch (err) {
    return thrownOutcome(kind, err, performance.now() - t0);
  }
}
