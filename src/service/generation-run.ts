// One generation from a gRPC request to the engine and back, shared by every generation RPC:
// admission (engine ready, not draining, known model), mapping and validation, a server-unique
// engine id, and cancellation: when `signal` aborts (client cancel, disconnect, deadline) the
// engine cancels the request and frees its slot; the events then end with 'cancelled'. Every
// outcome (finished, refused, lost, abandoned) is recorded here, in metrics and the log.
import type { EngineEvent, ModelInfo } from '../engine/request.ts';
import { ErrorCode } from '../gen/mlxserve/v1/generation_pb.ts';
import type { DeltaEvent, FinishedEvent, StartedEvent } from './event-mapping.ts';
import type { CallInfo, GenerationTelemetry } from './generation-telemetry.ts';
import { fromEngineError, RequestError, toRequestError } from './request-error.ts';
import { toEngineRequest, type GenerationInput } from './request-mapping.ts';
import type { ServingState } from './serving-state.ts';

export type GenerationEvent = StartedEvent | DeltaEvent | FinishedEvent;

export interface Generation {
  model: ModelInfo;
  /** started, zero or more delta, then finished. Throws RequestError if the engine refuses or loses the request. */
  events: AsyncGenerator<GenerationEvent>;
}

/**
 * Admits and submits a request. Throws RequestError (UNAVAILABLE, NOT_FOUND, INVALID_ARGUMENT,
 * FAILED_PRECONDITION, CANCELLED) before anything reaches the engine; the returned events begin
 * only after that.
 */
export function startGeneration(state: ServingState, input: GenerationInput, signal: AbortSignal, call: CallInfo): Generation {
  const telemetry = state.telemetry(call);
  try {
    const model = state.model(input.model);
    state.admitGeneration();
    const request = toEngineRequest(state.newEngineRequestId(), input, model);
    if (signal.aborted) throw new RequestError(ErrorCode.CANCELLED, 'the request was cancelled before it started');
    telemetry.admitted(request.id, model, input.prompt);
    return { model, events: engineEvents(state, request.id, state.engine.generate(request), signal, telemetry) };
  } catch (e) {
    telemetry.failed(toRequestError(e));
    throw e;
  }
}

async function* engineEvents(
  state: ServingState,
  engineId: string,
  events: AsyncGenerator<EngineEvent>,
  signal: AbortSignal,
  telemetry: GenerationTelemetry,
): AsyncGenerator<GenerationEvent> {
  const end = state.beginGeneration();
  // Cancelling (rather than abandoning the iterator) works even while we wait for the next
  // event: the engine answers with 'finished'/'cancelled' and the loop ends normally.
  const cancel = () => state.engine.cancel(engineId);
  signal.addEventListener('abort', cancel, { once: true });
  if (signal.aborted) cancel();
  try {
    for await (const e of events) {
      if (e.type === 'error') {
        const error = fromEngineError(e);
        telemetry.failed(error);
        throw error;
      }
      if (e.type === 'started') telemetry.started(e);
      else if (e.type === 'delta') telemetry.delta(e);
      else telemetry.finished(e);
      yield e;
    }
  } finally {
    signal.removeEventListener('abort', cancel);
    // Left before its last event: the consumer (the call) is gone.
    telemetry.abandoned();
    end();
  }
}
