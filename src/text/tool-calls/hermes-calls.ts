// Hermes-style calls (Qwen2.5, Qwen3, Hermes, SmolLM3): `<tool_call>\n{"name": ..., "arguments":
// {...}}\n</tool_call>`, any number of them, possibly after some text. A call whose closing tag
// never came (the output stopped right after its JSON) still counts when its JSON is complete.
import { callFromJson, parseJson, type CallJson } from './call-json.ts';
import { type CallReader, type CallReading, MarkedCallScanner } from './marked-call-scanner.ts';
import { partialMarkerLength } from './partial-marker.ts';

const START = '<tool_call>';
const END = '</tool_call>';

function oneCall(json: string): CallJson[] | undefined {
  const call = callFromJson(parseJson(json.trim()), false);
  return call && [call];
}

class HermesCallReader implements CallReader {
  private searchFrom = 0;

  read(body: string): CallReading {
    const end = body.indexOf(END, this.searchFrom);
    if (end < 0) {
      this.searchFrom = Math.max(0, body.length - END.length + 1);
      return { complete: false };
    }
    return { complete: true, length: end + END.length, calls: oneCall(body.slice(0, end)) };
  }

  readAtEnd(body: string): CallJson[] | undefined {
    // The output may have stopped inside the closing tag.
    return oneCall(body.slice(0, body.length - partialMarkerLength(body, END)));
  }
}

/** A scanner for Hermes-style output. */
export function hermesCallScanner(): MarkedCallScanner {
  return new MarkedCallScanner(START, () => new HermesCallReader());
}
