// The shapes tool calling passes between the REST adapter, the prompt, the grammar and the output
// parser. They follow OpenAI's function tools, with names the way this code base spells them.

/** A function the model may call. */
export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON Schema object of the arguments */
  parameters?: Record<string, unknown>;
}

/** Whether the model may (auto), must not (none) or must (required, or a named function) call tools. */
export type ToolChoice = { mode: 'auto' | 'none' | 'required' } | { function: string };

/** A call found in the model's output (or sent back by the client in the chat history). */
export interface ParsedToolCall {
  id: string;
  name: string;
  /** JSON text of an object, compact (JSON.stringify of the parsed arguments) */
  arguments: string;
}

/**
 * How a model family writes tool calls: `hermes` `<tool_call>{"name", "arguments"}</tool_call>`
 * (Qwen2.5, Qwen3, Hermes, SmolLM3 and the fallback for templates without tools), `llama3_json` a
 * bare `{"name", "parameters"}` object (Llama 3.1 and later), `mistral` `[TOOL_CALLS]` and a JSON array.
 */
export type ToolCallFormat = 'hermes' | 'llama3_json' | 'mistral';

export const TOOL_CALL_FORMATS: readonly ToolCallFormat[] = ['hermes', 'llama3_json', 'mistral'];

/** A chat message as the server holds it, with the tool-calling fields OpenAI's messages carry. */
export interface ToolChatMessage {
  role: string;
  content: string;
  /** An assistant message's calls. */
  toolCalls?: ParsedToolCall[];
  /** A tool message: the call it answers. */
  toolCallId?: string;
  /** A tool message: the function that answered. */
  name?: string;
}

/** A call as transformers' chat templates read it from `message.tool_calls`. */
export interface TemplateToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: Record<string, unknown> | string };
}

/** A message as a Jinja chat template reads it (snake_case, as the templates spell the fields). */
export interface TemplateMessage {
  role: string;
  content: string;
  tool_calls?: TemplateToolCall[];
  tool_call_id?: string;
  name?: string;
}
