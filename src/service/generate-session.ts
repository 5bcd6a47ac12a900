// The multiplexed Generate stream: each client message starts or cancels one request; every
// request's events go out tagged with its client-chosen id, interleaved. Request ids are scoped to
// the stream (each request gets its own engine id). One request failing never ends the stream;
// half-close lets the running requests finish, then the stream ends with OK; cancelling the call
// (or its deadline, or a disconnect) cancels all of its requests.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { HandlerContext } from '@connectrpc/connect';
import type { Usage } from '../engine/request.ts';
import { ErrorCode } from '../gen/mlxserve/v1/generation_pb.ts';
import type { GenerateRequest, GenerateResponseSchema, StartGeneration } from '../gen/mlxserve/v1/generation_service_pb.ts';
import { AsyncQueue } from './async-queue.ts';
import { abortStatus } from './call-abort.ts';
import { toDelta, toFailedFinish, toFinished, toStarted } from './event-mapping.ts';
import { startGeneration } from './generation-run.ts';
import { callRequestId, codeName } from './generation-telemetry.ts';
import { invalidArgument, RequestError, toRequestError } from './request-error.ts';
import { checkRequestId } from './request-mapping.ts';
import type { ServingState } from './serving-state.ts';

type GenerateResponseInit = MessageInitShape<typeof GenerateResponseSchema>;

export class GenerateSession {
  private readonly out = new AsyncQueue<GenerateResponseInit>();
  /** Unfinished requests of this stream by client id, each with the switch that cancels it. */
  private readonly active = new Map<string, AbortController>();
  private readonly running = new Set<Promise<void>>();
  /** Set when the call is over: messages still in flight start nothing. */
  private ended = false;

  constructor(
    private readonly state: ServingState,
    private readonly callSignal: AbortSignal,
    /** The call's request id (x-request-id metadata), logged with each of its requests. */
    private readonly callId?: string,
  ) {}

  /** Serves the stream: reads client messages, yields every request's events. */
  async *serve(requests: AsyncIterable<GenerateRequest>): AsyncGenerator<GenerateResponseInit> {
    // The call is over (deadline, shutdown, client gone): its requests are cancelled, and once
    // their last events are out the stream ends, even if the client never half-closes.
    const cancelAll = () => {
      this.cancelAll();
      void Promise.all(this.running).then(() => this.out.close());
    };
    this.callSignal.addEventListener('abort', cancelAll, { once: true });
    const reading = this.read(requests);
    try {
      yield* this.out;
      // Its requests ended as 'cancelled' because the deadline expired or the server shut down:
      // the stream ends with that status, not OK.
      const aborted = abortStatus(this.callSignal);
      if (aborted) throw aborted;
    } finally {
      this.callSignal.removeEventListener('abort', cancelAll);
      // Ends with the call: nothing may keep running for a client that is gone. The reader ends
      // on its own when the call's request stream does (it never rejects).
      this.ended = true;
      this.cancelAll();
      void reading;
    }
  }

  private async read(requests: AsyncIterable<GenerateRequest>): Promise<void> {
    try {
      for await (const message of requests) this.handle(message);
      // Half-close: finish what runs, then end the stream with OK.
      while (this.running.size > 0) await Promise.all(this.running);
      this.out.close();
    } catch (e) {
      this.cancelAll();
      await Promise.all(this.running);
      this.out.close(e);
    }
  }

  private handle(message: GenerateRequest): void {
    const action = message.action;
    switch (action.case) {
      case 'start':
        this.start(action.value);
        return;
      case 'cancel':
        // Unknown or finished ids are ignored: the request may have ended while the cancel was in flight.
        this.active.get(action.value.requestId)?.abort();
        return;
      default:
        this.refuse('', invalidArgument('action', 'a Generate message must start or cancel a request'));
    }
  }

  private start(start: StartGeneration): void {
    if (this.ended) return;
    const id = start.requestId;
    try {
      checkRequestId(id);
    } catch (e) {
      this.refuse(id, toRequestError(e));
      return;
    }
    if (this.active.has(id)) {
      this.refuse(id, new RequestError(ErrorCode.ALREADY_EXISTS, `request_id "${id}" is already running on this stream`));
      return;
    }
    const cancel = new AbortController();
    this.active.set(id, cancel);
    const task = this.run(id, start, cancel);
    this.running.add(task);
    void task.finally(() => this.running.delete(task));
  }

  private async run(id: string, start: StartGeneration, cancel: AbortController): Promise<void> {
    let started = false;
    const usage: Usage = { promptTokens: 0, completionTokens: 0, cachedTokens: 0 };
    try {
      const generation = startGeneration(this.state, start, cancel.signal, {
        rpc: 'Generate',
        requestId: this.callId,
        streamRequestId: id,
      });
      for await (const e of generation.events) {
        if (e.type === 'started') {
          started = true;
          usage.promptTokens = e.promptTokens;
          usage.cachedTokens = e.cachedTokens;
          this.send(id, { case: 'started', value: toStarted(e, generation.id) });
        } else if (e.type === 'delta') {
          usage.completionTokens += e.tokenIds.length;
          this.send(id, { case: 'delta', value: toDelta(e) });
        } else {
          this.settle(id, cancel);
          this.send(id, { case: 'finished', value: toFinished(e) });
        }
      }
    } catch (e) {
      const error = toRequestError(e);
      this.settle(id, cancel);
      if (started) this.send(id, { case: 'finished', value: toFailedFinish(error, usage) });
      else this.send(id, { case: 'error', value: error.toProto() });
    } finally {
      this.settle(id, cancel);
    }
  }

  /** Frees the id before the request's last event goes out, so the client may reuse it at once. */
  private settle(id: string, cancel: AbortController): void {
    if (this.active.get(id) === cancel) this.active.delete(id);
  }

  private refuse(id: string, error: RequestError): void {
    this.state.options.requestMetrics.failed(codeName(error.code));
    this.send(id, { case: 'error', value: error.toProto() });
  }

  private send(requestId: string, event: GenerateResponseInit['event']): void {
    this.out.push({ requestId, event });
  }

  private cancelAll(): void {
    for (const cancel of this.active.values()) cancel.abort();
  }
}

export function generateHandler(state: ServingState) {
  return (requests: AsyncIterable<GenerateRequest>, ctx: HandlerContext) =>
    new GenerateSession(state, ctx.signal, callRequestId(ctx.requestHeader)).serve(requests);
}
