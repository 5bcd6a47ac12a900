// Turns a stream of generated token ids into a stream of text. Tokens are byte sequences that can
// end in the middle of a UTF-8 character (an emoji or CJK character split over byte tokens), so
// bytes are fed to a streaming UTF-8 decoder that holds an incomplete character back until its
// last byte arrives. The WHATWG decoder's streaming output concatenates to exactly its one-shot
// output, so the streamed text equals Tokenizer.decode(allIds) — the property vLLM's and HF
// TextStreamer's text-diffing approaches only approximate.

/** What the detokenizer needs from a tokenizer. */
export interface TokenByteSource {
  tokenBytes(id: number): Uint8Array;
  isSpecial(id: number): boolean;
  /** Decoding drops one leading space (SentencePiece's prefix space). */
  readonly stripsLeadingSpace: boolean;
}

export class IncrementalDetokenizer {
  private readonly decoder = new TextDecoder('utf-8');
  private atStart: boolean;
  private flushed = false;

  constructor(
    private readonly tokenizer: TokenByteSource,
    private readonly opts: { skipSpecialTokens?: boolean } = {},
  ) {
    this.atStart = tokenizer.stripsLeadingSpace;
  }

  /** Adds one token; returns the text it completes (possibly empty). */
  push(id: number): string {
    if (this.flushed) throw new Error('IncrementalDetokenizer.push called after flush');
    if (this.opts.skipSpecialTokens && this.tokenizer.isSpecial(id)) return '';
    return this.emit(this.decoder.decode(this.tokenizer.tokenBytes(id), { stream: true }));
  }

  /** Ends the stream; returns what was held back (an incomplete character becomes U+FFFD). */
  flush(): string {
    if (this.flushed) return '';
    this.flushed = true;
    return this.emit(this.decoder.decode());
  }

  /**
   * Ends the stream dropping what was held back: the bytes of a character whose last bytes were
   * never generated (max_tokens cut it), which flush() would show as U+FFFD.
   */
  discardIncomplete(): void {
    this.flushed = true;
  }

  private emit(text: string): string {
    if (this.atStart && text.length > 0) {
      this.atStart = false;
      if (text.startsWith(' ')) return text.slice(1);
    }
    return text;
  }
}
