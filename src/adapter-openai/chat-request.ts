// Reads a POST /v1/chat/completions body into a GenerationPlan: the messages become a chat
// prompt the service renders with the model's template; tool calling, structured output and
// non-text content are refused by name, since the server does not implement them.
import { invalidRequest, unsupportedParameter, unsupportedValue } from './openai-error.ts';
import { serviceModel, type GenerationPlan } from './generation-plan.ts';
import { invalidType, quote, RequestBody } from './request-body.ts';
import { ignoreHarmlessFields, readN, readSharedSampling, readStreamOptions } from './sampling-fields.ts';

export interface ChatTurn {
  role: string;
  content: string;
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
    if (role === 'tool' || role === 'function') {
      throw unsupportedValue(`${where}.role`, `role '${role}' is not supported: this server does not implement tool calling.`);
    }
    if (!['system', 'developer', 'user', 'assistant'].includes(role)) {
      throw invalidRequest(
        `${where}.role`,
        `Invalid value: '${role}'. Supported values are: 'system', 'developer', 'user' and 'assistant'.`,
        'invalid_value',
      );
    }
    if (msg.tool_calls !== undefined && msg.tool_calls !== null && !isEmptyList(msg.tool_calls)) {
      throw unsupportedParameter(`${where}.tool_calls`, 'tool calling is not implemented');
    }
    if (msg.function_call !== undefined && msg.function_call !== null) {
      throw unsupportedParameter(`${where}.function_call`, 'function calling is not implemented');
    }
    if (msg.audio !== undefined && msg.audio !== null) throw unsupportedParameter(`${where}.audio`, 'audio is not implemented');
    // Chat templates know system, user and assistant; "developer" is OpenAI's newer name for system.
    return { role: role === 'developer' ? 'system' : role, content: readContent(msg.content, where, role === 'assistant') };
  });
}

/** Reads the fields OpenAI has for tools and output formats, refusing any that asks for something. */
function refuseUnsupportedChatFields(body: RequestBody): void {
  body.unsupported('tools', 'tool calling is not implemented', isEmptyList);
  body.unsupported('functions', 'function calling is not implemented', isEmptyList);
  body.unsupported('tool_choice', 'tool calling is not implemented', (v) => v === 'none' || v === 'auto');
  body.unsupported('function_call', 'function calling is not implemented', (v) => v === 'none' || v === 'auto');
  body.unsupported('parallel_tool_calls', 'tool calling is not implemented', (v) => typeof v === 'boolean');
  const format = body.value('response_format');
  if (format !== undefined) {
    const type = typeof format === 'object' && format !== null ? (format as { type?: unknown }).type : undefined;
    if (type !== 'text') {
      throw unsupportedValue(
        'response_format.type',
        `${quote(type ?? format)} is not supported: this server produces free text only (response_format 'text').`,
      );
    }
  }
  body.unsupported('audio', 'audio output is not implemented');
  body.unsupported('modalities', 'only text output is implemented', (v) => Array.isArray(v) && v.every((m) => m === 'text'));
  body.unsupported('prediction', 'predicted outputs are not implemented');
  body.unsupported('reasoning_effort', 'the model is not a reasoning model');
  body.unsupported('web_search_options', 'web search is not implemented');
  body.unsupported('min_tokens', 'a minimum output length is not implemented', (v) => v === 0);
  body.unsupported('include_stop_str_in_output', 'the stop string is never part of the output', (v) => v === false);
  body.unsupported('continue_final_message', 'continuing the final message is not implemented', (v) => v === false);
}

export function readChatRequest(json: unknown): GenerationPlan & { messages: ChatTurn[] } {
  const body = RequestBody.from(json);
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
  refuseUnsupportedChatFields(body);
  ignoreHarmlessFields(body);
  body.rejectUnrecognized();

  return {
    model: serviceModel(requested),
    messages,
    prompts: [{ input: { case: 'chat', value: { messages, addGenerationPrompt } } }],
    n,
    sampling,
    seed,
    stream,
    includeUsage,
    names: {
      prompt: 'messages',
      maxTokens: maxCompletionTokens !== undefined ? 'max_completion_tokens' : 'max_tokens',
      topLogprobs: 'top_logprobs',
      model: requested ?? 'default',
    },
  };
}
