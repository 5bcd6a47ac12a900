// Where a JSON object or array ends, found while the text still streams in: brackets are counted
// outside strings only. The text is not validated here; JSON.parse does that once the value is complete.

/** Finds the end of one JSON object or array in text that arrives piece by piece. */
export class JsonValueEnd {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private scanned: number;

  /** `start` is the index of the value's opening `{` or `[` in the text given to `find`. */
  constructor(start: number) {
    this.scanned = start;
  }

  /**
   * The index just past the value in `text`, or -1 while it is still open. `text` may only grow
   * between calls; what was scanned before is not scanned again.
   */
  find(text: string): number {
    for (let i = this.scanned; i < text.length; i++) {
      const c = text[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
      } else if (c === '"') {
        this.inString = true;
      } else if (c === '{' || c === '[') {
        this.depth++;
      } else if ((c === '}' || c === ']') && --this.depth === 0) {
        this.scanned = i + 1;
        return i + 1;
      }
    }
    this.scanned = text.length;
    return -1;
  }
}
