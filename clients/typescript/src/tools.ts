// Tool calling: the functions a chat prompt offers the model, how it may call them, and the calls
// it makes (which come back on deltas and completions, and go back into the chat as messages).
import type { MessageInitShape } from '@bufbuild/protobuf';
import { Code, GenerationServiceError } from './errors.ts';
import { type ToolCall as ProtoToolCall, ToolChoiceMode, type ToolChoiceSchema, type ToolSchema } from './proto.ts';
import type { ChatMessage } from './request.ts';

/** A function the model may call. */
export interface Tool {
  /** 1 to 64 characters of a-z, A-Z, 0-9, _ and -. */
  name: string;
  /** What the function does, for the model. */
  description?: string;
  /** JSON Schema of the arguments object, as an object or JSON text. Default: any object. */
  parameters?: object | string;
}

/**
 * Whether and which tool the model must call: 'auto' (the model decides; the default when tools
 * are given), 'none' (answer in text), 'required' (call one or more tools), or one named function.
 */
export type ToolChoice = 'auto' | 'none' | 'required' | { function: string };

/** A call of a tool by the model. */
export interface ToolCall {
  /** Identifies the call; the tool message with the result answers it with this id. */
  id: string;
  /** The function called. */
  name: string;
  /** The arguments, as JSON text (an object); parseToolArguments() parses it. */
  arguments: string;
}

/** The arguments of a call, parsed. Throws a SyntaxError if they are not JSON. */
export function parseToolArguments(call: ToolCall): Record<string, unknown> {
  return JSON.parse(call.arguments) as Record<string, unknown>;
}

/** The 'tool' message that answers a call with its result (an object is sent as JSON). */
export function toolMessage(call: ToolCall, result: string | object): ChatMessage {
  return {
    role: 'tool',
    content: typeof result === 'string' ? result : JSON.stringify(result),
    toolCallId: call.id,
    name: call.name,
  };
}

const MODES: Record<string, ToolChoiceMode> = {
  auto: ToolChoiceMode.AUTO,
  none: ToolChoiceMode.NONE,
  required: ToolChoiceMode.REQUIRED,
};

export function toProtoTool(tool: Tool): MessageInitShape<typeof ToolSchema> {
  const { parameters } = tool;
  return {
    name: tool.name,
    description: tool.description,
    parameters: parameters === undefined || typeof parameters === 'string' ? parameters : JSON.stringify(parameters),
  };
}

export function toProtoToolChoice(choice: ToolChoice | undefined): MessageInitShape<typeof ToolChoiceSchema> | undefined {
  if (choice === undefined) return undefined;
  if (typeof choice === 'object' && typeof choice.function === 'string') return { choice: { case: 'function', value: choice.function } };
  const mode = typeof choice === 'string' ? MODES[choice] : undefined;
  if (mode === undefined) {
    throw new GenerationServiceError(
      `toolChoice must be 'auto', 'none', 'required' or { function: name }, got ${JSON.stringify(choice)}`,
      Code.InvalidArgument,
      'prompt.chat.tool_choice',
    );
  }
  return { choice: { case: 'mode', value: mode } };
}

export function fromProtoToolCall(c: ProtoToolCall): ToolCall {
  return { id: c.id, name: c.name, arguments: c.arguments };
}
