// Reads a POST /v1/chat/completions body into a GenerationPlan: the messages become a chat
// prompt the service renders with the model's template, with its tools and the conversation's tool
// calls and results; non-text content and deprecated function calling are refused by name.
import { InvalidArgumentError } from '../engine/sampling-params.ts';
import { ToolChoiceMode } from '../gen/mlxserve/v1/prompt_pb.ts';
import { validateToolChoice, validateTools } from '../text/tool-calls/tool-validation.ts';
import { invalidRequest, unsupportedParameter, unsupportedValue } from './openai-error.ts';
import { readStructuredOutput } from './structured-output-fields.ts';
import { serviceModel, type GenerationPlan } from './generation-plan.ts';
import { readPromptCacheKey } from './prompt-cache-key.ts';
import { invalidType, quote, RequestBody } from './request-body.ts';
import { CHAT_COMPLETION_BODY } from './request-schemas/chat-completion-schema.ts';
import { ignoreHarmlessFields, readN, readSharedSampling, readStreamOptions } from './sampling-fields.ts';

export interface ChatTurn {
  role: string;
  content: string;
  /** An assistant turn's tool calls (id, name, arguments as JSON text). */
  toolCalls?: { id: string; name: string; arguments: string }[];
  /** A tool turn: the call it answers. */
  toolCallId?: string;
  name?: string;
}

const isEmptyList = (v: unknown) => Array.isArray(v) && v.length === 0;

/** Text of a message's content: a string, or an array of text parts (joined by newlines, as vLLM does). */
function readContent(value: unknown, where: string, nullable: boolean): string {
  if (typeof value === 'string') return value;
  if ((value === null || value === undefined) && nullable) return '';
  if (!Array.isArray(value)) throw invalidType(`${where}.content`, 'a string or an array of content parts', value ?? null);
  return value
    .map((part, j) => {
      const at = `${where}.content[${j}]`;
      if (part === null || typeof part !== 'object') throw invalidType(at, 'an object', part);
      const { type, text } = part as { type?: unknown; text?: unknown };
      if (type !== 'text') {
        throw unsupportedValue(`${at}.type`, `content part type ${quote(type ?? null)} is not supported: this server accepts text only.`);
      }
      if (typeof text !== 'string') throw invalidType(`${at}.text`, 'a string', text ?? null);
      return text;
    })
    .join('\n');
}

export function readMessages(value: unknown): ChatTurn[] {
  if (value === undefined) throw invalidRequest('messages', "Missing required parameter: 'messages'.", 'missing_required_parameter');
  if (!Array.isArray(value)) throw invalidType('messages', 'an array', value);
  if (value.length === 0)
    throw invalidRequest('messages', "Invalid 'messages': empty array. Expected an array with minimum length 1.", 'empty_array');
  return value.map((m, i) => {
    const where = `messages[${i}]`;
    if (m === null || typeof m !== 'object' || Array.isArray(m)) throw invalidType(where, 'an object', m);
    const msg = m as Record<string, unknown>;
    const role = msg.role;
    if (typeof role !== 'string') throw invalidType(`${where}.role`, 'a string', role ?? null);
    if (role === 'function') {
      throw unsupportedValue(`${where}.role`, "role 'function' is not supported: send tool calls and 'tool' messages instead.");
    }
    if (!['system', 'developer', 'user', 'assistant', 'tool'].includes(role)) {
      throw invalidRequest(
        `${where}.role`,
        `Invalid value: '${role}'. Supported values are: 'system', 'developer', 'user', 'assistant' and 'tool'.`,
        'invalid_value',
      );
    }
    if (msg.function_call !== undefined && msg.function_call !== null) {
      throw unsupportedParameter(`${where}.function_call`, "the deprecated function_call; send 'tool_calls' instead");
    }
    if (msg.audio !== undefined && msg.audio !== null) throw unsupportedParameter(`${where}.audio`, 'audio is not implemented');
    const turn: ChatTurn = {
      // Chat templates know system, user and assistant; "developer" is OpenAI's newer name for system.
      role: role === 'developer' ? 'system' : role,
      content: readContent(msg.content, where, role === 'assistant'),
    };
    if (role === 'assistant') {
      const calls = readToolCalls(msg.tool_calls, where);
      if (calls.length > 0) turn.toolCalls = calls;
    } else if (msg.tool_calls !== undefined && msg.tool_calls !== null && !isEmptyList(msg.tool_calls)) {
      throw invalidRequest(`${where}.tool_calls`, `Invalid parameter: only assistant messages can have 'tool_calls'.`);
    }
    if (role === 'tool') {
      if (typeof msg.tool_call_id !== 'string') {
        throw invalidRequest(`${where}.tool_call_id`, `Missing required parameter: '${where}.tool_call_id'.`, 'missing_required_parameter');
      }
      turn.toolCallId = msg.tool_call_id;
      if (typeof msg.name === 'string') turn.name = msg.name;
    }
    return turn;
  });
}

/** An assistant message's `tool_calls`: [{id, type: 'function', function: {name, arguments}}]. */
function readToolCalls(value: unknown, where: string): NonNullable<ChatTurn['toolCalls']> {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalidType(`${where}.tool_calls`, 'an array', value);
  return value.map((c, j) => {
    const at = `${where}.tool_calls[${j}]`;
    if (c === null || typeof c !== 'object' || Array.isArray(c)) throw invalidType(at, 'an object', c);
    const { id, type, function: fn } = c as Record<string, unknown>;
    if (type !== undefined && type !== 'function')
      throw invalidRequest(`${at}.type`, `Invalid value: ${quote(type)}. Supported values are: 'function'.`, 'invalid_value');
    if (fn === null || typeof fn !== 'object' || Array.isArray(fn)) throw invalidType(`${at}.function`, 'an object', fn ?? null);
    const { name, arguments: args } = fn as Record<string, unknown>;
    if (typeof name !== 'string' || name === '') throw invalidType(`${at}.function.name`, 'a non-empty string', name ?? null);
    if (typeof args !== 'string') throw invalidType(`${at}.function.arguments`, 'a string (JSON)', args ?? null);
    return { id: typeof id === 'string' ? id : `call_${j}`, name, arguments: args };
  });
}

/** An InvalidArgumentError of the text layer's checks as OpenAI's 400. */
function asInvalidRequest<T>(check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof InvalidArgumentError)
      throw invalidRequest(e.field, `Invalid '${e.field}': ${e.reason?.replace(/^[.:]?\s*/, '') ?? e.message}`);
    throw e;
  }
}

/** `tools`, checked, and as the chat prompt's tool list. */
export function readToolList(body: RequestBody) {
  const checked = asInvalidRequest(() => validateTools(body.value('tools')));
  const tools = checked.map((t) => ({
    name: t.name,
    description: t.description ?? '',
    parameters: t.parameters ? JSON.stringify(t.parameters) : '',
  }));
  return { checked, tools };
}

/** `tools`, `tool_choice`, `parallel_tool_calls` → the chat prompt's fields. */
function readTools(body: RequestBody) {
  const { checked, tools } = readToolList(body);
  const toolChoice = asInvalidRequest(() => validateToolChoice(body.value('tool_choice'), checked));
  const parallelToolCalls = body.boolean('parallel_tool_calls');
  return {
    tools,
    toolChoice:
      'function' in toolChoice
        ? { choice: { case: 'function' as const, value: toolChoice.function } }
        : { choice: { case: 'mode' as const, value: TOOL_CHOICE_MODES[toolChoice.mode] } },
    parallelToolCalls,
  };
}

const TOOL_CHOICE_MODES = { auto: ToolChoiceMode.AUTO, none: ToolChoiceMode.NONE, required: ToolChoiceMode.REQUIRED };

/** Reads the fields OpenAI has for output kinds, refusing any that asks for something not served. */
function refuseUnsupportedChatFields(body: RequestBody): void {
  body.unsupported('functions', "the deprecated 'functions'; send 'tools' instead", isEmptyList);
  body.unsupported('function_call', "the deprecated 'function_call'; send 'tool_choice' instead", (v) => v === 'none' || v === 'auto');
  body.unsupported('audio', 'audio output is not implemented');
  body.unsupported('modalities', 'only text output is implemented', (v) => Array.isArray(v) && v.every((m) => m === 'text'));
  body.unsupported('prediction', 'predicted outputs are not implemented');
  body.unsupported('reasoning_effort', 'the model is not a reasoning model');
  body.unsupported('web_search_options', 'web search is not implemented');
  body.unsupported('min_tokens', 'a minimum output length is not implemented', (v) => v === 0);
  body.unsupported('include_stop_str_in_output', 'the stop string is never part of the output', (v) => v === false);
  refuseUnsupportedTemplateFields(body);
}

/** Chat-template options of vLLM this server does not implement (shared with POST /tokenize). */
export function refuseUnsupportedTemplateFields(body: RequestBody): void {
  body.unsupported('continue_final_message', 'continuing the final message is not implemented', (v) => v === false);
  // A template of the request's own would change the prompt: ignoring it would answer another prompt.
  body.unsupported('chat_template', "a request's own chat template is not supported; the server's (--chat-template) is used");
}

export type ChatPlan = GenerationPlan & { messages: ChatTurn[] };

export function readChatRequest(json: unknown): ChatPlan {
  return readChatBody(RequestBody.from(json, CHAT_COMPLETION_BODY));
}

export function readChatBody(body: RequestBody): ChatPlan {
  const requested = body.string('model');
  const messages = readMessages(body.value('messages'));
  const { sampling, seed } = readSharedSampling(body);
  const n = readN(body);
  const { stream, includeUsage } = readStreamOptions(body);

  const maxCompletionTokens = body.int32('max_completion_tokens');
  const maxTokens = body.int32('max_tokens');
  sampling.maxTokens = maxCompletionTokens ?? maxTokens;

  const logprobs = body.boolean('logprobs') ?? false;
  const topLogprobs = body.int32('top_logprobs');
  if (topLogprobs !== undefined && topLogprobs !== 0 && !logprobs) {
    throw invalidRequest('top_logprobs', "'top_logprobs' requires 'logprobs' to be true.");
  }
  sampling.logprobs = logprobs;
  sampling.topLogprobs = topLogprobs;

  const addGenerationPrompt = body.boolean('add_generation_prompt') ?? true;
  const structured = readStructuredOutput(body);
  sampling.structuredOutput = structured?.output;
  const tools = readTools(body);
  refuseUnsupportedChatFields(body);
  ignoreHarmlessFields(body);
  const promptCacheKey = readPromptCacheKey(body);

  return {
    model: serviceModel(requested),
    messages,
    prompts: [{ input: { case: 'chat', value: { messages, addGenerationPrompt, ...tools } } }],
    n,
    sampling,
    seed,
    stream,
    includeUsage,
    promptCacheKey,
    names: {
      prompt: 'messages',
      maxTokens: maxCompletionTokens !== undefined ? 'max_completion_tokens' : 'max_tokens',
      topLogprobs: 'top_logprobs',
      model: requested ?? 'default',
      structuredOutput: structured?.param,
    },
  };
}
