// Output in which a start marker (`<tool_call>`, `[TOOL_CALLS]`) opens calls and anything else is
// text. The text is released as it comes, except an end that could be the start of a marker; after
// a marker, a format's CallReader says where the calls end and what they are. Markup that is not a
// valid call goes back to the client as text, as vLLM does. Whitespace that only separates calls
// (from each other, from the start or the end of the output) is not content.
import type { CallJson, CallScanner, ScanResult } from './call-json.ts';
import { isBlank, partialMarkerLength } from './partial-marker.ts';

/** What a reader found after a start marker. */
export type CallReading =
  | { complete: false }
  /** The markup takes the first `length` characters after the marker; `calls` undefined: not a valid call. */
  | { complete: true; length: number; calls: CallJson[] | undefined };

/** Reads the calls that follow one start marker. */
export interface CallReader {
  /** The text after the marker so far; it only grows between calls. */
  read(body: string): CallReading;
  /** The output ended inside the markup: the calls of `body`, or undefined when it holds none. */
  readAtEnd(body: string): CallJson[] | undefined;
}

/** Reads the calls of a format whose calls begin with `marker`; `newReader` reads one call's markup. */
export class MarkedCallScanner implements CallScanner {
  /** Outside a call: text not yet released. Inside: the text after the marker. */
  private buffer = '';
  /** Defined while inside a call's markup. */
  private reader: CallReader | undefined;
  /** At the start of the output or just after a call, where whitespace may only separate calls. */
  private boundary = true;
  /** Whitespace before the current marker: dropped if a valid call follows. */
  private heldWhitespace = '';
  private anyCall = false;

  constructor(
    private readonly marker: string,
    private readonly newReader: () => CallReader,
  ) {}

  push(text: string): ScanResult {
    this.buffer += text;
    const out: ScanResult = { content: '', calls: [] };
    this.drain(out);
    return out;
  }

  finish(): ScanResult {
    const out: ScanResult = { content: '', calls: [] };
    if (this.reader) this.endCall(out, this.buffer.length, this.reader.readAtEnd(this.buffer));
    if (!(this.boundary && this.anyCall && isBlank(this.buffer))) out.content += this.buffer;
    this.buffer = '';
    return out;
  }

  private drain(out: ScanResult): void {
    while (this.reader ? this.readCall(out) : this.readText(out));
  }

  /** Releases text up to a marker; true when a marker was found and a call begins. */
  private readText(out: ScanResult): boolean {
    const at = this.buffer.indexOf(this.marker);
    if (at >= 0) {
      const before = this.buffer.slice(0, at);
      if (this.boundary && isBlank(before)) this.heldWhitespace = before;
      else out.content += before;
      this.buffer = this.buffer.slice(at + this.marker.length);
      this.reader = this.newReader();
      return true;
    }
    const release = this.buffer.slice(0, this.buffer.length - partialMarkerLength(this.buffer, this.marker));
    // Whitespace after a call waits: a marker may follow.
    if (this.boundary && isBlank(release)) return false;
    out.content += release;
    this.buffer = this.buffer.slice(release.length);
    if (release) this.boundary = false;
    return false;
  }

  /** True when the call's markup is complete and text follows again. */
  private readCall(out: ScanResult): boolean {
    const reading = this.reader!.read(this.buffer);
    if (!reading.complete) return false;
    this.endCall(out, reading.length, reading.calls);
    return true;
  }

  private endCall(out: ScanResult, length: number, calls: CallJson[] | undefined): void {
    const markup = this.buffer.slice(0, length);
    this.buffer = this.buffer.slice(length);
    this.reader = undefined;
    if (calls) {
      out.calls.push(...calls);
      this.anyCall = true;
      this.boundary = true;
    } else {
      out.content += this.heldWhitespace + this.marker + markup;
      this.boundary = false;
    }
    this.heldWhitespace = '';
  }
}
