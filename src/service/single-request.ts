// The single-request generation RPCs: GenerateStream (events streamed) and Complete (one answer).
// A refused request, or one that fails after it started, ends the call with an error status whose
// details carry the GenerationError; the call's deadline or cancellation cancels the request.
import type { ParsedToolCall } from '../text/tool-calls/tool-types.ts';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { HandlerContext } from '@connectrpc/connect';
import type { TokenLogprob } from '../text/generation.ts';
import type {
  CompleteRequest,
  CompleteResponseSchema,
  GenerateStreamRequest,
  GenerateStreamResponseSchema,
} from '../gen/mlxserve/v1/generation_service_pb.ts';
import { ErrorCode } from '../gen/mlxserve/v1/generation_pb.ts';
import { abortStatus } from './call-abort.ts';
import { toDelta, toFinished, toStarted, toTokenLogprob, type FinishedEvent } from './event-mapping.ts';
import { startGeneration, type GenerationEvent } from './generation-run.ts';
import { callRequestId } from './generation-telemetry.ts';
import { RequestError, toConnectError } from './request-error.ts';
import type { ServingState } from './serving-state.ts';

/**
 * A generation that ended in the engine with finish reason 'error' fails the call; one cancelled
 * because the call's deadline expired or the server shut down ends it with that status.
 */
function failIfErrored(e: GenerationEvent, signal: AbortSignal): void {
  if (e.type !== 'finished') return;
  if (e.finishReason === 'error') throw new RequestError(ErrorCode.INTERNAL, e.error ?? 'generation failed');
  const aborted = e.finishReason === 'cancelled' ? abortStatus(signal) : undefined;
  if (aborted) throw aborted;
}

export function generateStreamHandler(state: ServingState) {
  return async function* generateStream(
    req: GenerateStreamRequest,
    ctx: HandlerContext,
  ): AsyncGenerator<MessageInitShape<typeof GenerateStreamResponseSchema>> {
    try {
      const generation = startGeneration(state, req, ctx.signal, { rpc: 'GenerateStream', requestId: callRequestId(ctx.requestHeader) });
      for await (const e of generation.events) {
        failIfErrored(e, ctx.signal);
        if (e.type === 'started') yield { event: { case: 'started', value: toStarted(e, generation.id) } };
        else if (e.type === 'delta') yield { event: { case: 'delta', value: toDelta(e) } };
        else yield { event: { case: 'finished', value: toFinished(e) } };
      }
    } catch (e) {
      throw toConnectError(e);
    }
  };
}

export function completeHandler(state: ServingState) {
  return async function complete(req: CompleteRequest, ctx: HandlerContext): Promise<MessageInitShape<typeof CompleteResponseSchema>> {
    try {
      const generation = startGeneration(state, req, ctx.signal, { rpc: 'Complete', requestId: callRequestId(ctx.requestHeader) });
      let text = '';
      const tokenIds: number[] = [];
      const logprobs: TokenLogprob[] = [];
      const toolCalls: ParsedToolCall[] = [];
      let finished: FinishedEvent | undefined;
      for await (const e of generation.events) {
        failIfErrored(e, ctx.signal);
        if (e.type === 'delta') {
          text += e.text;
          tokenIds.push(...e.tokenIds);
          if (e.logprobs) logprobs.push(...e.logprobs);
          if (e.toolCalls) toolCalls.push(...e.toolCalls);
        } else if (e.type === 'finished') finished = e;
      }
      if (!finished) throw new RequestError(ErrorCode.INTERNAL, 'the engine ended the request without finishing it');
      return {
        model: generation.id,
        text,
        tokenIds,
        logprobs: logprobs.map(toTokenLogprob),
        finished: toFinished(finished),
        toolCalls,
      };
    } catch (e) {
      throw toConnectError(e);
    }
  };
}
