// Turns a sequence's sampled tokens into text and decides when it stops: end-of-sequence tokens,
// stop token ids, stop strings (matched across token boundaries and never emitted), max_tokens and
// the context limit. Text is released only in whole UTF-8 characters.
import type { FinishReason } from '../engine/request.ts';
import type { SamplingParams } from '../engine/sampling-params.ts';
import { IncrementalDetokenizer } from './incremental-detokenizer.ts';
import { StopStringMatcher } from './stop-string-matcher.ts';
import type { Tokenizer } from './tokenizer.ts';

export interface OutputStep {
  /** Text safe to send now (may be empty). */
  text: string;
  finishReason?: FinishReason;
  /** The stop string or stop token id that ended generation. */
  stopReason?: string | number;
}

export class SequenceOutputProcessor {
  private readonly detokenizer: IncrementalDetokenizer;
  private readonly stops: StopStringMatcher | undefined;
  private readonly eos: Set<number>;
  private readonly stopIds: Set<number>;
  private ended = false;

  constructor(
    tokenizer: Tokenizer,
    private readonly params: SamplingParams,
  ) {
    this.detokenizer = new IncrementalDetokenizer(tokenizer, { skipSpecialTokens: true });
    this.stops = params.stop.length > 0 ? new StopStringMatcher(params.stop) : undefined;
    this.eos = new Set(params.ignoreEos ? [] : tokenizer.eosTokenIds);
    this.stopIds = new Set(params.stopTokenIds);
  }

  /**
   * Processes the newest output token. `generated` counts output tokens including this one;
   * `contextFull` says the sequence reached the longest length it may have.
   */
  push(tokenId: number, generated: number, contextFull: boolean): OutputStep {
    if (this.ended) throw new Error('token after the sequence finished');
    if (this.stopIds.has(tokenId)) return this.end('stop', tokenId);
    if (this.eos.has(tokenId)) return this.end('stop');
    const piece = this.detokenizer.push(tokenId);
    if (this.stops) {
      const r = this.stops.push(piece);
      if (r.stopped) {
        this.ended = true;
        return { text: r.text, finishReason: 'stop', stopReason: r.stop };
      }
      if (this.reachedLength(generated, contextFull)) return this.end('length', undefined, r.text);
      return { text: r.text };
    }
    if (this.reachedLength(generated, contextFull)) return this.end('length', undefined, piece);
    return { text: piece };
  }

  private reachedLength(generated: number, contextFull: boolean): boolean {
    return contextFull || (this.params.maxTokens !== undefined && generated >= this.params.maxTokens);
  }

  /** Finishes: whatever text was held back (partial characters, possible stop prefixes) is released. */
  private end(reason: FinishReason, stopReason?: string | number, text = ''): OutputStep {
    return { text: text + this.flush(), finishReason: reason, stopReason };
  }

  /** Text still held back; called when the sequence ends for any reason. */
  flush(): string {
    if (this.ended) return '';
    this.ended = true;
    const tail = this.detokenizer.flush();
    if (!this.stops) return tail;
    // Characters completed only now may still complete a stop string.
    const r = this.stops.push(tail);
    return r.stopped ? r.text : r.text + this.stops.flush();
  }
}
