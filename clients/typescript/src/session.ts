// Many requests over one Generate stream. Each request is an async iterable of its own events;
// the session sends starts and cancels on the one stream and routes every response to its
// request by id.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { Client } from '@connectrpc/connect';
import { connectCallOptions } from './call-options.ts';
import { Code, GenerationServiceError } from './errors.ts';
import { EventQueue } from './event-queue.ts';
import { collectCompletion, fromDelta, fromFinished, fromStarted, type Completion, type GenerationEvent } from './events.ts';
import type { GenerateRequestSchema, GenerateResponse, GenerationService } from './proto.ts';
import { toProtoGeneration, type GenerationRequest } from './request.ts';

type GenerateMessage = MessageInitShape<typeof GenerateRequestSchema>;

export interface SessionOptions {
  /** Aborting it cancels the stream and every request on it. */
  signal?: AbortSignal;
  /** Deadline of the whole stream; when it expires, every request on it is cancelled. */
  timeoutMs?: number;
  /** The stream's prompt cache key (see CallOptions): a stream reaches one server, so one key for all its requests. */
  promptCacheKey?: string;
}

/** One request of a session: iterate it for its events (once), or await completion(). */
export class SessionRequest implements AsyncIterable<GenerationEvent> {
  private iterated = false;

  constructor(
    /** The request id on the stream. */
    readonly id: string,
    private readonly events: EventQueue<GenerationEvent>,
    private readonly cancelRequest: () => void,
  ) {}

  /** Asks the server to stop this request; its events then end with finishReason 'cancelled'. */
  cancel(): void {
    this.cancelRequest();
  }

  /**
   * The events: started, deltas, finished. A refused or failed request throws a
   * GenerationServiceError. Leaving the loop early cancels the request.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<GenerationEvent> {
    if (this.iterated) throw new Error(`request ${this.id}: its events can be iterated only once`);
    this.iterated = true;
    try {
      yield* this.events.drain();
    } finally {
      if (!this.events.isEnded) this.cancelRequest();
    }
  }

  /** Waits for the whole generation. */
  completion(): Promise<Completion> {
    return collectCompletion(this);
  }
}

export class GenerationSession {
  private readonly outgoing = new EventQueue<GenerateMessage>();
  private readonly open = new Map<string, EventQueue<GenerationEvent>>();
  private readonly abortController = new AbortController();
  private readonly ended: Promise<void>;
  private nextId = 0;
  private halfClosed = false;
  private failure: GenerationServiceError | undefined;

  constructor(service: Client<typeof GenerationService>, options: SessionOptions = {}) {
    const { signal } = options;
    if (signal) {
      if (signal.aborted) this.abortController.abort(signal.reason);
      else signal.addEventListener('abort', () => this.abortController.abort(signal.reason), { once: true });
    }
    const responses = service.generate(
      this.outgoing.drain(),
      connectCallOptions({ signal: this.abortController.signal, timeoutMs: options.timeoutMs, promptCacheKey: options.promptCacheKey }),
    );
    this.ended = this.receive(responses);
  }

  /** Requests started and not yet finished. */
  get openRequests(): number {
    return this.open.size;
  }

  /** Why the stream ended, if it failed (every open request failed with it). */
  get error(): GenerationServiceError | undefined {
    return this.failure;
  }

  /**
   * Starts a request on the stream. `requestId` defaults to a fresh one; it must differ from
   * the ids of this session's unfinished requests.
   */
  generate(request: GenerationRequest, options: { requestId?: string } = {}): SessionRequest {
    if (this.failure) throw this.failure;
    if (this.halfClosed) throw new Error('the session is closed: start requests before close()');
    const id = options.requestId ?? `r${++this.nextId}`;
    if (id.length === 0) throw new GenerationServiceError('requestId must not be empty', Code.InvalidArgument, 'request_id');
    if (this.open.has(id))
      throw new GenerationServiceError(`request id "${id}" is already running on this session`, Code.AlreadyExists, '', id);
    // Converted before the id is registered, so that a request refused here leaves nothing open.
    const start = { requestId: id, ...toProtoGeneration(request) };
    const events = new EventQueue<GenerationEvent>();
    this.open.set(id, events);
    this.outgoing.push({ action: { case: 'start', value: start } });
    return new SessionRequest(id, events, () => this.cancel(id));
  }

  /** Cancels an unfinished request (ignored for unknown or finished ids, and after close()). */
  cancel(requestId: string): void {
    if (!this.open.has(requestId) || this.halfClosed) return;
    this.outgoing.push({ action: { case: 'cancel', value: { requestId } } });
  }

  /** Starts no more requests: the open ones finish, then the stream ends. Resolves then. */
  async close(): Promise<void> {
    this.halfClosed = true;
    this.outgoing.end();
    await this.ended;
  }

  /** Cancels the stream and every request on it. */
  abort(): void {
    this.abortController.abort();
  }

  private async receive(responses: AsyncIterable<GenerateResponse>): Promise<void> {
    try {
      for await (const r of responses) this.route(r);
      this.failAll(new GenerationServiceError('the stream ended before the request finished', Code.Internal));
    } catch (e) {
      this.failure = GenerationServiceError.from(e);
      this.failAll(this.failure);
    } finally {
      this.halfClosed = true;
      this.outgoing.end();
    }
  }

  private route(r: GenerateResponse): void {
    const events = this.open.get(r.requestId);
    if (!events) return; // a request the caller already gave up on
    const e = r.event;
    try {
      switch (e.case) {
        case 'started':
          events.push(fromStarted(e.value));
          return;
        case 'delta':
          events.push(fromDelta(e.value));
          return;
        case 'finished':
          this.open.delete(r.requestId);
          events.push(fromFinished(e.value, r.requestId));
          events.end();
          return;
        case 'error':
          this.open.delete(r.requestId);
          events.end(GenerationServiceError.fromProto(e.value, r.requestId));
          return;
      }
    } catch (error) {
      events.end(error); // a finish carrying an error
    }
  }

  private failAll(error: GenerationServiceError): void {
    for (const [id, events] of this.open) {
      events.end(new GenerationServiceError(error.message, error.code, error.field, id, { cause: error }));
    }
    this.open.clear();
  }
}
