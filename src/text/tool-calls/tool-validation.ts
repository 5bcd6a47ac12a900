// Checks the `tools` and `tool_choice` fields of an OpenAI chat request and turns them into the
// server's types. Every error names the field, so each edge can report it as its own 400 / INVALID_ARGUMENT.
import { InvalidArgumentError } from '../../engine/sampling-params.ts';
import type { ToolChoice, ToolDefinition } from './tool-types.ts';

/** As OpenAI's API: names that are safe in every format's markup and in a grammar's literal strings. */
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** As OpenAI's API: every tool's schema is in the prompt and in the grammar, so the list stays short. */
export const MAX_TOOLS = 128;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function toolError(reason: string): InvalidArgumentError {
  return InvalidArgumentError.ofField('tools', reason);
}

function validateTool(tool: unknown, i: number): ToolDefinition {
  if (!isRecord(tool)) throw toolError(`[${i}] must be an object {type: 'function', function: {...}}`);
  if (tool.type !== 'function') throw toolError(`[${i}].type must be 'function', got ${JSON.stringify(tool.type) ?? 'nothing'}`);
  const fn = tool.function;
  if (!isRecord(fn)) throw toolError(`[${i}].function must be an object with a name`);
  const { name, description, parameters, strict } = fn;
  if (typeof name !== 'string' || !TOOL_NAME.test(name)) {
    throw toolError(`[${i}].function.name must be 1 to 64 letters, digits, '_' or '-', got ${JSON.stringify(name) ?? 'nothing'}`);
  }
  if (description !== undefined && description !== null && typeof description !== 'string') {
    throw toolError(`[${i}].function.description must be a string`);
  }
  if (strict !== undefined && strict !== null && typeof strict !== 'boolean') throw toolError(`[${i}].function.strict must be a boolean`);
  const out: ToolDefinition = { name };
  if (typeof description === 'string') out.description = description;
  if (parameters !== undefined && parameters !== null) {
    if (!isRecord(parameters)) throw toolError(`[${i}].function.parameters must be a JSON Schema object`);
    // Arguments are always a JSON object: every format writes them as one.
    if (parameters.type !== undefined && parameters.type !== 'object') {
      throw toolError(`[${i}].function.parameters must describe an object (type 'object'), got type ${JSON.stringify(parameters.type)}`);
    }
    out.parameters = parameters;
  }
  return out;
}

/**
 * Reads OpenAI's `tools` ([{type: 'function', function: {name, description?, parameters?, strict?}}]).
 * Absent (or null) means no tools. `strict` is accepted and not kept: the server constrains calls
 * with a grammar whenever it can.
 */
export function validateTools(tools: unknown): ToolDefinition[] {
  if (tools === undefined || tools === null) return [];
  if (!Array.isArray(tools)) throw toolError(' must be a list of function tools');
  if (tools.length > MAX_TOOLS) throw toolError(` must hold at most ${MAX_TOOLS} tools, got ${tools.length}`);
  const out = tools.map(validateTool);
  const seen = new Set<string>();
  out.forEach((tool, i) => {
    if (seen.has(tool.name)) throw toolError(`[${i}].function.name ${JSON.stringify(tool.name)} is not unique`);
    seen.add(tool.name);
  });
  return out;
}

/**
 * Reads OpenAI's `tool_choice` ('none' | 'auto' | 'required' | {type: 'function', function: {name}})
 * against the validated tools. Absent means 'auto' when there are tools and 'none' otherwise, as
 * OpenAI's API; a choice other than 'none' or 'auto' given without tools is an error.
 */
export function validateToolChoice(choice: unknown, tools: ToolDefinition[]): ToolChoice {
  if (choice === undefined || choice === null) return { mode: tools.length > 0 ? 'auto' : 'none' };
  // Without tools, 'none' and 'auto' both mean no calls (clients send them by default).
  if (tools.length === 0 && (choice === 'none' || choice === 'auto')) return { mode: 'none' };
  if (tools.length === 0) throw InvalidArgumentError.ofField('tool_choice', ' requires tools');
  if (choice === 'none' || choice === 'auto' || choice === 'required') return { mode: choice };
  if (isRecord(choice) && choice.type === 'function' && isRecord(choice.function) && typeof choice.function.name === 'string') {
    const name = choice.function.name;
    if (!tools.some((t) => t.name === name)) {
      throw InvalidArgumentError.ofField('tool_choice', `.function.name ${JSON.stringify(name)} is not one of the tools`);
    }
    return { function: name };
  }
  throw InvalidArgumentError.ofField(
    'tool_choice',
    ` must be 'none', 'auto', 'required' or {type: 'function', function: {name}}, got ${JSON.stringify(choice) ?? String(choice)}`,
  );
}
