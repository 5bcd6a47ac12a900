// How each format writes a call as text: for the calls of earlier turns when the server renders
// them itself, and for the syntax the system message teaches. The JSON is spaced as Python's
// json.dumps spaces it (", " and ": "), which is how the models saw calls in training and what
// the chat templates' `tojson` renders.
import type { ParsedToolCall, ToolCallFormat } from './tool-types.ts';

/** JSON with ", " between items and ": " after keys, on one line. */
export function spacedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(spacedJson).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${spacedJson(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * A call's arguments as a value: the parsed object when they are the JSON text of one, otherwise
 * the text itself (a client may send back anything; the template or the model makes what it can of it).
 */
export function argumentsValue(argumentsJson: string): Record<string, unknown> | string {
  try {
    const value: unknown = JSON.parse(argumentsJson);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // not JSON: passed on as text
  }
  return argumentsJson;
}

/** The key each format puts the arguments under. */
export function argumentsKey(format: ToolCallFormat): 'arguments' | 'parameters' {
  return format === 'llama3_json' ? 'parameters' : 'arguments';
}

/** The calls of one assistant turn as the model writes them in `format`. */
export function renderToolCalls(calls: readonly Pick<ParsedToolCall, 'name' | 'arguments'>[], format: ToolCallFormat): string {
  const objects = calls.map((c) => ({ name: c.name, [argumentsKey(format)]: argumentsValue(c.arguments) }));
  switch (format) {
    case 'hermes':
      return objects.map((o) => `<tool_call>\n${spacedJson(o)}\n</tool_call>`).join('\n');
    case 'llama3_json':
      return objects.map(spacedJson).join('; ');
    case 'mistral':
      return `[TOOL_CALLS]${spacedJson(objects)}`;
  }
}
