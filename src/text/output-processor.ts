// Turns a request's sampled tokens into text: released only in whole UTF-8 characters, and cut
// at the first stop string (matched across token boundaries, never emitted). Which tokens end
// generation (end-of-sequence and stop token ids, max_tokens, the context) is the engine's call.
import { IncrementalDetokenizer } from './incremental-detokenizer.ts';
import { StopStringMatcher } from './stop-string-matcher.ts';
import type { Tokenizer } from './tokenizer.ts';

export interface OutputStep {
  /** Text safe to send now (may be empty). */
  text: string;
  /** The stop string this token completed; the text before it is in `text`, nothing after it counts. */
  stop?: string;
}

export class OutputProcessor {
  private readonly detokenizer: IncrementalDetokenizer;
  private readonly stops: StopStringMatcher | undefined;
  private ended = false;

  constructor(tokenizer: Tokenizer, stop: readonly string[]) {
    this.detokenizer = new IncrementalDetokenizer(tokenizer, { skipSpecialTokens: true });
    this.stops = stop.length > 0 ? new StopStringMatcher([...stop]) : undefined;
  }

  /** Adds the newest output token's text. */
  push(tokenId: number): OutputStep {
    if (this.ended) throw new Error('token after the output ended');
    const piece = this.detokenizer.push(tokenId);
    if (!this.stops) return { text: piece };
    const r = this.stops.push(piece);
    if (r.stopped) {
      this.ended = true;
      return { text: r.text, stop: r.stop };
    }
    return { text: r.text };
  }

  /**
   * Text still held back by the stop-string matcher; call once, at the end. A final character cut
   * short (its remaining bytes never generated) is dropped: the text holds whole characters only,
   * while its token stays in the token ids and the usage.
   */
  flush(): string {
    if (this.ended) return '';
    this.ended = true;
    this.detokenizer.discardIncomplete();
    return this.stops ? this.stops.flush() : '';
  }
}
