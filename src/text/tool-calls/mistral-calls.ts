// Mistral's calls: `[TOOL_CALLS]` and a JSON list of {"name", "arguments"} (v0.3 models, with a
// space before the list from SentencePiece), or the newer `[TOOL_CALLS]name[ARGS]{...}`, one call
// per marker. `[TOOL_CALLS]` is a special token: the output must be decoded with special tokens kept.
import { callFromJson, parseJson, type CallJson } from './call-json.ts';
import { JsonValueEnd } from './json-value-end.ts';
import { type CallReader, type CallReading, MarkedCallScanner } from './marked-call-scanner.ts';

const START = '[TOOL_CALLS]';
const ARGS = '[ARGS]';
const NAME = /^[A-Za-z0-9_.-]+/;

/** Where the JSON after the marker starts, and the function name when the `name[ARGS]` form gave it. */
interface JsonStart {
  start: number;
  name?: string;
}

/** A list of calls, or one call object; undefined unless every entry is a valid call. */
function callsFromValue(value: unknown): CallJson[] | undefined {
  const entries = Array.isArray(value) ? value : [value];
  const calls = entries.map((v) => callFromJson(v, false));
  if (calls.length === 0 || calls.some((c) => c === undefined)) return undefined;
  return calls as CallJson[];
}

class MistralCallReader implements CallReader {
  private json: JsonStart | undefined;
  private end: JsonValueEnd | undefined;

  read(body: string): CallReading {
    if (!this.json) {
      const located = locateJson(body);
      if (located === 'wait') return { complete: false };
      // Not markup after all: the marker alone goes back as text, and what follows is scanned again.
      if (located === 'none') return { complete: true, length: 0, calls: undefined };
      this.json = located;
      this.end = new JsonValueEnd(located.start);
    }
    const end = this.end!.find(body);
    if (end < 0) return { complete: false };
    const value = parseJson(body.slice(this.json.start, end));
    const name = this.json.name;
    const calls = name === undefined ? callsFromValue(value) : callsFromValue({ name, arguments: value });
    return { complete: true, length: end, calls };
  }

  readAtEnd(): undefined {
    // read() takes every complete list or object, so what is left at the end is cut short.
    return undefined;
  }
}

/** Finds the JSON after the marker: 'wait' while the text could still become markup, 'none' when it cannot. */
function locateJson(body: string): JsonStart | 'wait' | 'none' {
  const lead = body.length - body.trimStart().length;
  if (lead === body.length) return 'wait';
  if (body[lead] === '[' || body[lead] === '{') return { start: lead };
  const name = NAME.exec(body.slice(lead))?.[0];
  if (!name) return 'none';
  const rest = body.slice(lead + name.length);
  if (rest.length < ARGS.length) return ARGS.startsWith(rest) ? 'wait' : 'none';
  if (!rest.startsWith(ARGS)) return 'none';
  const start = lead + name.length + ARGS.length;
  if (start === body.length) return 'wait';
  return body[start] === '{' ? { start, name } : 'none';
}

/** A scanner for Mistral's output. */
export function mistralCallScanner(): MarkedCallScanner {
  return new MarkedCallScanner(START, () => new MistralCallReader());
}
