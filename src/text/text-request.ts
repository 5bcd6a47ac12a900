// One generation seen from the text layer: its prompt's token ids and the engine request made of
// them, and the translation of the engine's token events back into events with text. Stop strings
// are matched here; when one completes, the generation ends at once ('stop', the string as the
// reason) and the caller cancels the engine request (vLLM's abort pattern); the engine's own end
// of it is then dropped.
import type { EngineEvent, EngineRequest, TokenIdLogprob } from '../engine/request.ts';
import type { GenerateRequest, GenerationEvent, TokenLogprob } from './generation.ts';
import { OutputProcessor } from './output-processor.ts';
import type { Tokenizer } from './tokenizer.ts';

export interface Accepted {
  events: GenerationEvent[];
  /** A stop string ended the generation: cancel the engine request. */
  cancel: boolean;
}

export class TextRequest {
  private readonly output: OutputProcessor;
  /** Tokens that end generation (the engine stops on them); they add no text. */
  private readonly stopIds: ReadonlySet<number>;
  private promptTokens = 0;
  private cachedTokens = 0;
  private completionTokens = 0;
  /** The generation ended here (a stop string); the engine's remaining events are dropped. */
  private ended = false;
  private started = false;

  constructor(
    private readonly tokenizer: Tokenizer,
    readonly request: GenerateRequest,
    /** The prompt, tokenized (prompt-tokens.ts). */
    readonly promptTokenIds: number[],
  ) {
    const s = request.sampling;
    this.stopIds = new Set([...s.stopTokenIds, ...(s.ignoreEos ? [] : tokenizer.eosTokenIds)]);
    this.output = new OutputProcessor(tokenizer, s.stop);
  }

  /** What the engine computes for this request, under `engineId`. */
  engineRequest(engineId: string): EngineRequest {
    const { stop: _stop, ignoreEos: _ignoreEos, ...sampling } = this.request.sampling;
    return { id: engineId, promptTokenIds: this.promptTokenIds, sampling: { ...sampling, stopTokenIds: [...this.stopIds] } };
  }

  /** Translates one engine event (of this request) into events for the client. */
  accept(e: EngineEvent): Accepted {
    const requestId = this.request.id;
    if (this.ended) return { events: [], cancel: false };
    switch (e.type) {
      case 'started':
        this.started = true;
        this.promptTokens = e.promptTokens;
        this.cachedTokens = e.cachedTokens;
        return { events: [{ ...e, requestId }], cancel: false };
      case 'error':
        return { events: [{ ...e, requestId }], cancel: false };
      case 'tokens': {
        const events: GenerationEvent[] = [];
        for (let i = 0; i < e.tokenIds.length; i++) {
          const tokenId = e.tokenIds[i];
          this.completionTokens++;
          const logprobs = e.logprobs ? [this.describe(e.logprobs[i])] : undefined;
          const step = this.stopIds.has(tokenId) ? { text: '' } : this.output.push(tokenId);
          events.push({ type: 'delta', requestId, text: step.text, tokenIds: [tokenId], logprobs });
          if ('stop' in step && step.stop !== undefined) {
            this.ended = true;
            events.push({ type: 'finished', requestId, finishReason: 'stop', stopReason: step.stop, usage: this.usage() });
            return { events, cancel: true };
          }
        }
        return { events, cancel: false };
      }
      case 'finished': {
        this.ended = true;
        const events: GenerationEvent[] = [];
        // Cancelled while still queued, the engine never started it: clients still see the one
        // documented order, started → deltas → finished.
        if (!this.started) events.push({ type: 'started', requestId, promptTokens: this.promptTokenIds.length, cachedTokens: 0 });
        const tail = this.output.flush();
        if (tail) events.push({ type: 'delta', requestId, text: tail, tokenIds: [] });
        events.push({
          type: 'finished',
          requestId,
          finishReason: e.finishReason,
          stopReason: e.stopTokenId,
          usage: e.usage,
          error: e.error,
        });
        return { events, cancel: false };
      }
    }
  }

  private usage() {
    return { promptTokens: this.promptTokens, completionTokens: this.completionTokens, cachedTokens: this.cachedTokens };
  }

  private describe(l: TokenIdLogprob): TokenLogprob {
    const token = (tokenId: number) => ({
      tokenId,
      token: this.tokenizer.tokenText(tokenId),
      bytes: Array.from(this.tokenizer.tokenBytes(tokenId)),
    });
    return { ...token(l.tokenId), logprob: l.logprob, top: l.top.map((t) => ({ ...token(t.tokenId), logprob: t.logprob })) };
  }
}
