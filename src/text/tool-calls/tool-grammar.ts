// The grammar that makes the model's tool calls well formed: an XGrammar structural tag. Each tool
// gets its own tag whose begin string already holds the call's JSON up to the arguments
// (`<tool_call>\n{"name": "get_weather", "arguments": `): names can only be exact, each tool's
// arguments follow its own schema, and the name comes first, as the templates write it.
//
// What XGrammar (web-xgrammar 0.1.27) does with these, checked in test/tool-calls.test.ts: a
// json_schema part takes any whitespace inside the value but none before or after it; an object
// must give its properties in the schema's order and, unless the schema allows additional ones, no
// others. `tags_with_separator` takes its tags and separators and nothing else; inside a `sequence`
// it must come last, with a tag's end after it, or compiling throws (a bare number). `stop_after_first`
// ends the output after one tag; `triggered_tags` with `at_least_one` would forbid text before the
// first tag, so `auto` does without it.
import { argumentsKey } from './call-syntax.ts';
import type { ToolCallFormat, ToolChoice, ToolDefinition } from './tool-types.ts';

/** The structural-tag parts used here (types, not interfaces, so the result is a plain record). */
type Format =
  | { type: 'const_string'; value: string }
  | { type: 'json_schema'; json_schema: Record<string, unknown> }
  | { type: 'regex'; pattern: string }
  | { type: 'sequence'; elements: Format[] }
  | Tag
  | { type: 'triggered_tags'; triggers: string[]; tags: Tag[]; stop_after_first?: boolean }
  | { type: 'tags_with_separator'; tags: Tag[]; separator: string; at_least_one?: boolean; stop_after_first?: boolean };
type Tag = { type: 'tag'; begin: string; content: Format; end: string };

/** A tool's arguments schema; arguments are always an object, so a schema that does not say so is made to. */
export function argumentsSchema(tool: ToolDefinition): Record<string, unknown> {
  if (!tool.parameters) return { type: 'object' };
  return tool.parameters.type === undefined ? { ...tool.parameters, type: 'object' } : tool.parameters;
}

/** One call of `tool` as a JSON object, `{"name": "<tool>", "<key>": <arguments>}`, between `before` and `after`. */
function callTag(tool: ToolDefinition, format: ToolCallFormat, before: string, after: string): Tag {
  return {
    type: 'tag',
    begin: `${before}{"name": ${JSON.stringify(tool.name)}, "${argumentsKey(format)}": `,
    content: { type: 'json_schema', json_schema: argumentsSchema(tool) },
    end: `}${after}`,
  };
}

const HERMES_START = '<tool_call>';
const MISTRAL_START = '[TOOL_CALLS]';

/** Calls only: one (`single`) or more, each written as the format writes it. */
function callsOnly(tools: readonly ToolDefinition[], format: ToolCallFormat, single: boolean): Format {
  switch (format) {
    case 'hermes': {
      const tags = tools.map((t) => callTag(t, format, `${HERMES_START}\n`, '\n</tool_call>'));
      // Qwen and Hermes models put a newline between consecutive calls.
      return { type: 'tags_with_separator', tags, separator: '\n', at_least_one: true, stop_after_first: single };
    }
    case 'llama3_json': {
      const tags = tools.map((t) => callTag(t, format, '', ''));
      return { type: 'tags_with_separator', tags, separator: '; ', at_least_one: true, stop_after_first: single };
    }
    case 'mistral':
      return mistralCallList(tools, single);
  }
}

/**
 * `[TOOL_CALLS][{...}, {...}]`. Mistral's SentencePiece models write a space before the list (the
 * `▁[` token), Tekken models do not: both are allowed. The list must be a tag's content so that
 * XGrammar knows what ends it.
 */
function mistralCallList(tools: readonly ToolDefinition[], single: boolean): Tag {
  const tags = tools.map((t) => callTag(t, 'mistral', '', ''));
  const list: Format = { type: 'tags_with_separator', tags, separator: ', ', at_least_one: true, stop_after_first: single };
  return {
    type: 'tag',
    begin: MISTRAL_START,
    content: { type: 'sequence', elements: [{ type: 'regex', pattern: ' ?\\[' }, list] },
    end: ']',
  };
}

/**
 * Free text in which the format's start marker begins a constrained call; undefined when the format
 * has no marker to trigger on (llama3_json's calls are bare JSON, indistinguishable from text at their start).
 */
function textOrCalls(tools: readonly ToolDefinition[], format: ToolCallFormat, single: boolean): Format | undefined {
  switch (format) {
    case 'hermes': {
      const tags = tools.map((t) => callTag(t, format, `${HERMES_START}\n`, '\n</tool_call>'));
      return { type: 'triggered_tags', triggers: [HERMES_START], tags, stop_after_first: single };
    }
    case 'llama3_json':
      return undefined;
    case 'mistral':
      // All calls are in one list, and the turn ends with it.
      return { type: 'triggered_tags', triggers: [MISTRAL_START], tags: [mistralCallList(tools, single)], stop_after_first: true };
  }
}

/**
 * The XGrammar structural tag (`{type: 'structural_tag', format}`) that constrains the output for
 * `choice`: `required` allows only calls (one, or with `parallel` one or more) of the tools; a named
 * function exactly one call of it; `auto` free text in which the format's marker starts a call.
 * Undefined when nothing is to be constrained: `none`, no tools, or `auto` in a format without a marker.
 * Throws when a named function is not among the tools (validateToolChoice prevents that).
 */
export function toolCallGrammar(
  tools: ToolDefinition[],
  choice: ToolChoice,
  parallel: boolean,
  format: ToolCallFormat,
): Record<string, unknown> | undefined {
  if ('function' in choice) {
    const tool = tools.find((t) => t.name === choice.function);
    if (!tool) throw new Error(`tool_choice names ${JSON.stringify(choice.function)}, which is not among the tools`);
    return structuralTag(callsOnly([tool], format, true));
  }
  if (choice.mode === 'none' || tools.length === 0) return undefined;
  const single = !parallel;
  return structuralTag(choice.mode === 'required' ? callsOnly(tools, format, single) : textOrCalls(tools, format, single));
}

function structuralTag(structure: Format | undefined): Record<string, unknown> | undefined {
  return structure && { type: 'structural_tag', format: structure };
}
