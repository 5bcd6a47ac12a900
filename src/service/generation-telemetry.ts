// What the service records about one generation: its metrics (request-metrics.ts) and its log
// lines, both keyed by the request id. Times are taken here, where every request passes from
// arrival to its last event. A finished request logs one line with its token counts and times;
// a refused or failed one logs why. The prompt and the generated text are not logged unless the
// operator asked for prompts (--log-prompts), and then only the prompt.
import type { ModelInfo } from './model-info.ts';
import { ErrorCode } from '../gen/mlxserve/v1/generation_pb.ts';
import type { Prompt } from '../gen/mlxserve/v1/prompt_pb.ts';
import type { Logger } from '../log/logger.ts';
import type { DeltaEvent, FinishedEvent, StartedEvent } from './event-mapping.ts';
import type { RequestError } from './request-error.ts';
import type { RequestMetrics } from './request-metrics.ts';

/** Where a generation request came from. */
export interface CallInfo {
  /** The RPC serving it: Generate, GenerateStream or Complete. */
  rpc: string;
  /** The caller's request id (`x-request-id` metadata; the REST adapter sends its own). */
  requestId?: string;
  /** The client's id of the request on a multiplexed Generate stream. */
  streamRequestId?: string;
}

/** The caller's request id from the call's metadata; only a sane one is trusted (it goes into logs). */
export function callRequestId(headers: Headers): string | undefined {
  const id = headers.get('x-request-id');
  return id && /^[\x21-\x7e]{1,128}$/.test(id) ? id : undefined;
}

/** Codes that mean the client sent something wrong or went away, not that the server is in trouble. */
const CLIENT_CODES = new Set([
  ErrorCode.CANCELLED,
  ErrorCode.INVALID_ARGUMENT,
  ErrorCode.NOT_FOUND,
  ErrorCode.ALREADY_EXISTS,
  ErrorCode.FAILED_PRECONDITION,
  ErrorCode.OUT_OF_RANGE,
]);
const OVERLOAD_CODES = new Set([ErrorCode.RESOURCE_EXHAUSTED, ErrorCode.UNAVAILABLE, ErrorCode.DEADLINE_EXCEEDED]);

/** The lower-case gRPC status name of a code ("invalid_argument"). */
export function codeName(code: ErrorCode): string {
  return (ErrorCode[code] ?? 'unknown').toLowerCase();
}

/** The prompt as it may be logged: its content only when prompts are logged. */
function describePrompt(prompt: Prompt | undefined, withContent: boolean): Record<string, unknown> {
  const input = prompt?.input;
  switch (input?.case) {
    case 'text':
      return withContent ? { promptKind: 'text', prompt: input.value } : { promptKind: 'text', promptChars: input.value.length };
    case 'chat':
      return withContent
        ? { promptKind: 'chat', messages: input.value.messages.map((m) => ({ role: m.role, content: m.content })) }
        : { promptKind: 'chat', promptMessages: input.value.messages.length };
    case 'tokens':
      return withContent
        ? { promptKind: 'tokens', promptTokenIds: input.value.ids }
        : { promptKind: 'tokens', promptTokenIdCount: input.value.ids.length };
    default:
      return { promptKind: 'none' };
  }
}

export class GenerationTelemetry {
  private readonly arrival = performance.now();
  private log: Logger;
  private model = '';
  private promptTokens = 0;
  private cachedTokens = 0;
  private completionTokens = 0;
  private queueMs: number | undefined;
  private ttftMs: number | undefined;
  private lastTokenAt: number | undefined;
  private ended = false;

  constructor(
    private readonly metrics: RequestMetrics,
    log: Logger,
    call: CallInfo,
    private readonly logPrompts: boolean,
  ) {
    this.log = log.child({ requestId: call.requestId, streamRequestId: call.streamRequestId, rpc: call.rpc });
  }

  private sinceArrival(now = performance.now()): number {
    return now - this.arrival;
  }

  /** The request passed admission and goes to the engine under `engineId`. */
  admitted(engineId: string, model: ModelInfo, prompt: Prompt | undefined, adapter?: string): void {
    this.model = model.id;
    this.log = this.log.child(adapter === undefined ? { engineId } : { engineId, adapter });
    const fields = describePrompt(prompt, this.logPrompts);
    if (this.logPrompts) this.log.info(fields, 'request received');
    else this.log.debug(fields, 'request received');
  }

  started(e: StartedEvent): void {
    this.promptTokens = e.promptTokens;
    this.cachedTokens = e.cachedTokens;
    this.queueMs = this.sinceArrival();
    this.metrics.started(this.model, e.promptTokens, this.queueMs / 1000);
  }

  delta(e: DeltaEvent): void {
    const n = e.tokenIds.length;
    if (n === 0) return;
    const now = performance.now();
    if (this.ttftMs === undefined) {
      this.ttftMs = this.sinceArrival(now);
      this.metrics.firstToken(this.model, this.ttftMs / 1000);
    }
    this.metrics.tokens(this.model, n, this.lastTokenAt === undefined ? undefined : (now - this.lastTokenAt) / 1000);
    this.lastTokenAt = now;
    this.completionTokens += n;
  }

  finished(e: FinishedEvent): void {
    if (this.ended) return;
    this.ended = true;
    const durationMs = this.sinceArrival();
    const fields = {
      finishReason: e.finishReason,
      promptTokens: e.usage.promptTokens,
      cachedTokens: e.usage.cachedTokens,
      completionTokens: e.usage.completionTokens,
      queueMs: round(this.queueMs),
      ttftMs: round(this.ttftMs),
      durationMs: round(durationMs),
    };
    if (e.finishReason === 'error') {
      this.metrics.failed(codeName(ErrorCode.INTERNAL));
      this.log.error({ ...fields, error: e.error }, 'request failed in the engine');
      return;
    }
    this.metrics.finished(this.model, e.finishReason, e.usage.completionTokens, durationMs / 1000);
    this.log.info(fields, 'request finished');
  }

  /** Refused before it ran, or lost on the way (e.g. the engine process died). */
  failed(error: RequestError): void {
    if (this.ended) return;
    this.ended = true;
    this.metrics.failed(codeName(error.code));
    const fields = {
      code: codeName(error.code),
      field: error.field || undefined,
      error: error.message,
      promptTokens: this.promptTokens || undefined,
      completionTokens: this.completionTokens || undefined,
      durationMs: round(this.sinceArrival()),
    };
    if (CLIENT_CODES.has(error.code)) this.log.info(fields, 'request refused');
    else if (OVERLOAD_CODES.has(error.code)) this.log.warn(fields, 'request refused or lost');
    else this.log.error(fields, 'request failed');
  }

  /** The consumer stopped reading before the last event (the client went away): a cancel. */
  abandoned(): void {
    if (this.ended) return;
    this.ended = true;
    const durationMs = this.sinceArrival();
    this.metrics.finished(this.model, 'cancelled', this.completionTokens, durationMs / 1000);
    this.log.info(
      {
        finishReason: 'cancelled',
        promptTokens: this.promptTokens,
        cachedTokens: this.cachedTokens,
        completionTokens: this.completionTokens,
        durationMs: round(durationMs),
      },
      'request abandoned by its client',
    );
  }
}

function round(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.round(ms * 10) / 10;
}
