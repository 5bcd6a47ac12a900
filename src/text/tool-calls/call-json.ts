// A call as the model writes it, read from JSON: `{"name": ..., "arguments": {...}}` (Llama's
// templates say "parameters"). What the three formats share once their markup is stripped.

/** A call read from the output; the parser gives it its id. */
export interface CallJson {
  name: string;
  /** Compact JSON text of an object. */
  arguments: string;
}

/** What a stretch of output turned out to be: text for the client, and the calls it completed. */
export interface ScanResult {
  content: string;
  calls: CallJson[];
}

/** Reads one format's calls out of streamed output. */
export interface CallScanner {
  push(text: string): ScanResult;
  /** The output has ended: whatever is held back is settled. */
  finish(): ScanResult;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The arguments as an object; models sometimes write them as a JSON string, or as null/"" for none. */
function argumentsObject(raw: unknown): Record<string, unknown> | undefined {
  if (raw === null) return {};
  if (typeof raw !== 'string') return isRecord(raw) ? raw : undefined;
  if (raw.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    return isRecord(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A call from a parsed JSON value, or undefined when it is not one: it needs a non-empty string
 * `name`, and `arguments` (or `parameters`) that is an object. `argumentsRequired` false lets a
 * call without them mean no arguments, where markup already says the JSON is a call; a bare JSON
 * object (llama3_json) needs them to tell a call from a JSON answer.
 */
export function callFromJson(value: unknown, argumentsRequired: boolean): CallJson | undefined {
  if (!isRecord(value)) return undefined;
  const { name } = value;
  if (typeof name !== 'string' || name === '') return undefined;
  const raw = value.arguments !== undefined ? value.arguments : value.parameters;
  const args = raw === undefined ? (argumentsRequired ? undefined : {}) : argumentsObject(raw);
  return args && { name, arguments: JSON.stringify(args) };
}

/** JSON.parse that answers undefined for text that is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
