// One generation from a gRPC request to the engine and back, shared by every generation RPC:
// admission (engine ready, not draining, known model), mapping and validation, a server-unique
// engine id, tokenizing (long prompts off the event loop), and the text layer between the client's
// events and the engine's tokens. Cancellation: when `signal` aborts (client cancel, disconnect,
// deadline) the engine cancels the request and frees its slot; the events then end with
// 'cancelled'. A stop string ends the generation here and cancels it in the engine. Every outcome
// (finished, refused, lost, abandoned) is recorded here, in metrics and the log.
import type { GenerateRequest, GenerationEvent } from '../text/generation.ts';
import { tokenizePrompt } from '../text/prompt-tokens.ts';
import { TextRequest } from '../text/text-request.ts';
import { ErrorCode } from '../gen/mlxserve/v1/generation_pb.ts';
import type { CallInfo, GenerationTelemetry } from './generation-telemetry.ts';
import type { ModelInfo } from './model-info.ts';
import { fromEngineError, RequestError, toRequestError } from './request-error.ts';
import { toGenerateRequest, withDefaultMaxTokens, type GenerationInput } from './request-mapping.ts';
import type { ServingState } from './serving-state.ts';

export type { GenerationEvent } from '../text/generation.ts';

export interface Generation {
  model: ModelInfo;
  /** The id responses report: the LoRA adapter's name when one is used, else the model's id. */
  id: string;
  /** started, zero or more delta, then finished. Throws RequestError if the request is refused or lost. */
  events: AsyncGenerator<Exclude<GenerationEvent, { type: 'error' }>>;
}

/**
 * Admits a request. Throws RequestError (UNAVAILABLE, NOT_FOUND, INVALID_ARGUMENT,
 * FAILED_PRECONDITION, CANCELLED) for what is wrong with it before any tokenizing; a prompt the
 * model cannot take is refused from the events, before anything reaches the engine.
 */
export function startGeneration(state: ServingState, input: GenerationInput, signal: AbortSignal, call: CallInfo): Generation {
  const telemetry = state.telemetry(call);
  try {
    const { model, adapter, id } = state.select(input.model, input.adapter);
    state.admitGeneration();
    const request = toGenerateRequest(state.newEngineRequestId(), input, model, adapter?.name);
    if (signal.aborted) throw new RequestError(ErrorCode.CANCELLED, 'the request was cancelled before it started');
    telemetry.admitted(request.id, model, input.prompt, adapter?.name);
    return { model, id, events: generationEvents(state, request, model, signal, telemetry) };
  } catch (e) {
    telemetry.failed(toRequestError(e));
    throw e;
  }
}

async function* generationEvents(
  state: ServingState,
  request: GenerateRequest,
  model: ModelInfo,
  signal: AbortSignal,
  telemetry: GenerationTelemetry,
): AsyncGenerator<Exclude<GenerationEvent, { type: 'error' }>> {
  const end = state.beginGeneration();
  // The engine request has the generation's (server-unique) id. Cancelling (rather than
  // abandoning the iterator) works even while we wait for the next event: the engine answers
  // with 'finished'/'cancelled' and the loop ends normally.
  const cancel = () => state.engine.cancel(request.id);
  signal.addEventListener('abort', cancel, { once: true });
  try {
    let text: TextRequest;
    try {
      const pool = state.tokenizer();
      const ids = await tokenizePrompt(pool, request.input, request.sampling.maxTokens, model);
      if (signal.aborted) throw new RequestError(ErrorCode.CANCELLED, 'the request was cancelled before it started');
      text = new TextRequest(pool.tokenizer, withDefaultMaxTokens(request, ids.length, model), ids);
    } catch (e) {
      const error = toRequestError(e);
      telemetry.failed(error);
      throw error;
    }
    for await (const e of state.engine.generate(text.engineRequest(request.id))) {
      const accepted = text.accept(e);
      if (accepted.cancel) cancel();
      for (const g of accepted.events) {
        if (g.type === 'error') {
          const error = fromEngineError(g);
          telemetry.failed(error);
          throw error;
        }
        if (g.type === 'started') telemetry.started(g);
        else if (g.type === 'delta') telemetry.delta(g);
        else telemetry.finished(g);
        yield g;
      }
      // A stop string ended it: the engine's end of the request is of no interest.
      if (accepted.cancel) return;
    }
  } finally {
    signal.removeEventListener('abort', cancel);
    // Left before its last event: the consumer (the call) is gone.
    telemetry.abandoned();
    end();
  }
}
