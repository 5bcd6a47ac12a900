// Llama 3.1+ calls: the whole output is one or more JSON objects {"name": ..., "parameters": {...}}
// (or "arguments"), separated by `;` or newlines, optionally after `<|python_tag|>` (a special
// token: decode with special tokens kept). There is no marker, so the output is calls only when,
// after leading whitespace, it starts with `{` or the tag; anything else is all text. When an object
// turns out not to be a call (a JSON answer), the output from there on is text.
import { type CallScanner, callFromJson, parseJson, type ScanResult } from './call-json.ts';
import { JsonValueEnd } from './json-value-end.ts';

const PYTHON_TAG = '<|python_tag|>';

/** Undecided until the output's first character; then calls (until something else) or text for good. */
type Mode = 'undecided' | 'calls' | 'text';

/** Skips separators (whitespace, `;`, python tags) from the start of `text`; the index of what follows. */
function skipSeparators(text: string): number {
  let i = 0;
  for (;;) {
    while (i < text.length && (text[i] === ';' || text[i].trim() === '')) i++;
    if (!text.startsWith(PYTHON_TAG, i)) return i;
    i += PYTHON_TAG.length;
  }
}

/** Reads Llama 3's JSON calls, or decides that the output is text. */
export class Llama3JsonCallScanner implements CallScanner {
  private mode: Mode = 'undecided';
  /** Undecided: the output so far. Calls: the output after the last call. */
  private buffer = '';
  private callCount = 0;
  /** The object being read, when one has begun. */
  private value: { start: number; end: JsonValueEnd } | undefined;

  push(text: string): ScanResult {
    const out: ScanResult = { content: '', calls: [] };
    if (this.mode === 'text') {
      out.content = text;
      return out;
    }
    this.buffer += text;
    const mode = this.mode === 'undecided' ? this.decide() : this.mode;
    if (mode === 'calls') this.readCalls(out);
    else if (mode === 'text') this.becomeText(out);
    return out;
  }

  finish(): ScanResult {
    const out: ScanResult = { content: '', calls: [] };
    const rest = this.callCount > 0 ? this.buffer.slice(skipSeparators(this.buffer)) : this.buffer;
    if (rest !== '') this.becomeText(out);
    this.buffer = '';
    return out;
  }

  /** Settles what the output is once its first character (after whitespace) is known. */
  private decide(): Mode {
    const start = this.buffer.trimStart();
    if (start === '' || (start.length < PYTHON_TAG.length && PYTHON_TAG.startsWith(start))) return this.mode;
    this.mode = start.startsWith('{') || start.startsWith(PYTHON_TAG) ? 'calls' : 'text';
    return this.mode;
  }

  private readCalls(out: ScanResult): void {
    for (;;) {
      if (!this.value) {
        const start = skipSeparators(this.buffer);
        const rest = this.buffer.slice(start);
        if (rest === '' || PYTHON_TAG.startsWith(rest)) return;
        if (rest[0] !== '{') {
          this.becomeText(out);
          return;
        }
        this.value = { start, end: new JsonValueEnd(start) };
      }
      const end = this.value.end.find(this.buffer);
      if (end < 0) return;
      const call = callFromJson(parseJson(this.buffer.slice(this.value.start, end)), true);
      if (!call) {
        this.becomeText(out);
        return;
      }
      out.calls.push(call);
      this.callCount++;
      this.buffer = this.buffer.slice(end);
      this.value = undefined;
    }
  }

  /** The rest is text: all of the output when no call came first, else what follows the calls. */
  private becomeText(out: ScanResult): void {
    this.mode = 'text';
    out.content += this.callCount > 0 ? this.buffer.slice(skipSeparators(this.buffer)) : this.buffer;
    this.buffer = '';
    this.value = undefined;
  }
}
