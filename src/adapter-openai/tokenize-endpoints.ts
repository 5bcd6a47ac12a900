// vLLM's POST /tokenize and POST /detokenize over the service's Tokenize and Detokenize: the
// tokens generation feeds the model for a prompt (text as is, or messages through the chat
// template), with the context length, and the text of token ids. Refusals are OpenAI error bodies
// naming the parameter as the client sent it.
import { errorFromThrown, type ParamNames } from './grpc-error.ts';
import { readMessages, readToolList, refuseUnsupportedTemplateFields } from './chat-request.ts';
import { serviceModel, type PromptInit } from './generation-plan.ts';
import { retrieveModel } from './models-endpoint.ts';
import { invalidRequest, type OpenAIError } from './openai-error.ts';
import { invalidType, isInt32, outOfInt32Range, RequestBody } from './request-body.ts';
import { DETOKENIZE_BODY, TOKENIZE_BODY } from './request-schemas/tokenize-schema.ts';
import type { GenerationClient } from './service-connection.ts';

export interface TokenizeCall {
  signal: AbortSignal;
  headers: Record<string, string>;
}

export interface TokenizeResult {
  count: number;
  max_model_len: number;
  tokens: number[];
  token_strs?: string[];
}

export interface TokenizePlan {
  model: string | undefined;
  /** The model as the client named it, for a 404. */
  requested: string;
  prompt: PromptInit;
  /** 'prompt' or 'messages': the parameter errors about the input name. */
  inputParam: 'prompt' | 'messages';
  returnTokenStrings: boolean;
}

export function readTokenizeBody(body: RequestBody): TokenizePlan {
  const requested = body.string('model');
  const prompt = body.value('prompt');
  const rawMessages = body.value('messages');
  const addSpecialTokens = body.boolean('add_special_tokens');
  const addGenerationPrompt = body.boolean('add_generation_prompt');
  const { tools } = readToolList(body);
  const returnTokenStrings = body.boolean('return_token_strs') ?? false;
  refuseUnsupportedTemplateFields(body);
  const common = { model: serviceModel(requested), requested: requested ?? 'default', returnTokenStrings };

  if (prompt !== undefined && rawMessages !== undefined) {
    throw invalidRequest('messages', "Give either 'prompt' or 'messages', not both.");
  }
  if (rawMessages !== undefined) {
    const messages = readMessages(rawMessages);
    // The chat template writes the special tokens itself (vLLM's default for messages is false too).
    body.unsupported('add_special_tokens', 'with messages the chat template writes the special tokens', (v) => v === false);
    return {
      ...common,
      inputParam: 'messages',
      prompt: { input: { case: 'chat', value: { messages, addGenerationPrompt: addGenerationPrompt ?? true, tools } } },
    };
  }
  if (prompt === undefined) {
    throw invalidRequest('prompt', "Missing required parameter: 'prompt' (or 'messages').", 'missing_required_parameter');
  }
  if (typeof prompt !== 'string') throw invalidType('prompt', 'a string', prompt);
  // Options of messages only: refused with a prompt, so a mistake is not silent.
  const chatOnly = addGenerationPrompt !== undefined ? 'add_generation_prompt' : tools.length > 0 ? 'tools' : undefined;
  if (chatOnly) throw invalidRequest(chatOnly, `Invalid parameter: '${chatOnly}' applies to 'messages' only, not to 'prompt'.`);
  return {
    ...common,
    inputParam: 'prompt',
    prompt: { input: { case: 'text', value: prompt }, addSpecialTokens: addSpecialTokens ?? true },
  };
}

const names = (inputParam: string, model: string): ParamNames => ({
  prompt: inputParam,
  maxTokens: 'max_tokens',
  topLogprobs: 'top_logprobs',
  model,
});

export async function tokenize(client: GenerationClient, json: unknown, call: TokenizeCall): Promise<TokenizeResult> {
  const plan = readTokenizeBody(RequestBody.from(json, TOKENIZE_BODY));
  try {
    const r = await client.tokenize({ model: plan.model, prompt: plan.prompt, returnTokenStrings: plan.returnTokenStrings }, call);
    // Tokenize found the model, so this finds it too (an adapter reports its base model's context).
    const { max_model_len } = await retrieveModel(client, plan.model ?? 'default', call.signal);
    return {
      count: r.tokenIds.length,
      max_model_len,
      tokens: [...r.tokenIds],
      ...(plan.returnTokenStrings ? { token_strs: [...r.tokenStrings] } : {}),
    };
  } catch (err) {
    throw errorFromThrown(err, names(plan.inputParam, plan.requested));
  }
}

export function readDetokenizeBody(body: RequestBody): { model: string | undefined; requested: string; tokens: number[] } {
  const requested = body.string('model');
  const tokens = body.value('tokens');
  if (tokens === undefined) throw invalidRequest('tokens', "Missing required parameter: 'tokens'.", 'missing_required_parameter');
  if (!Array.isArray(tokens) || !tokens.every((t) => Number.isSafeInteger(t))) throw invalidType('tokens', 'an array of integers', tokens);
  const bad = (tokens as number[]).find((t) => !isInt32(t));
  if (bad !== undefined) throw outOfInt32Range('tokens', bad);
  return { model: serviceModel(requested), requested: requested ?? 'default', tokens: tokens as number[] };
}

/** The service names the token list `token_ids`; this API calls it `tokens`. */
function asTokensError(e: OpenAIError): OpenAIError {
  if (e.param !== 'token_ids') return e;
  return invalidRequest('tokens', e.message.replace(/^token_ids/, 'tokens'), e.code);
}

export async function detokenize(client: GenerationClient, json: unknown, call: TokenizeCall): Promise<{ prompt: string }> {
  const plan = readDetokenizeBody(RequestBody.from(json, DETOKENIZE_BODY));
  try {
    // Special tokens stay in the text, as vLLM's /detokenize leaves them.
    const r = await client.detokenize({ model: plan.model, tokenIds: plan.tokens, skipSpecialTokens: false }, call);
    return { prompt: r.text };
  } catch (err) {
    throw asTokensError(errorFromThrown(err, names('tokens', plan.requested)));
  }
}
