// gRPC request messages → generation requests (text layer). Unset sampling fields take the
// defaults; everything is validated here, before it reaches the engine, so errors name the field
// as the client sent it (`sampling.top_p`, `prompt.tokens.ids`).
import type { GenerateRequest, PromptInput } from '../text/generation.ts';
import type { ModelInfo } from './model-info.ts';
import { defaultSamplingParams, InvalidArgumentError, validateSamplingParams, type SamplingParams } from '../engine/sampling-params.ts';
import { type StructuredOutput, validateStructuredOutput } from '../engine/structured-output.ts';
import { ErrorCode } from '../gen/mlxserve/v1/generation_pb.ts';
import { type Prompt, type Tool as ProtoTool, type ToolChoice as ProtoToolChoice, ToolChoiceMode } from '../gen/mlxserve/v1/prompt_pb.ts';
import { validateToolChoice, validateTools } from '../text/tool-calls/tool-validation.ts';
import type { ToolChoice, ToolDefinition } from '../text/tool-calls/tool-types.ts';
import type { SamplingParams as ProtoSamplingParams } from '../gen/mlxserve/v1/sampling_pb.ts';
import { fromInvalidArgument, invalidArgument, invalidField, RequestError } from './request-error.ts';

/** The fields every generation RPC shares (StartGeneration, GenerateStreamRequest, CompleteRequest). */
export interface GenerationInput {
  model?: string;
  /** A LoRA adapter's name (the model may name it too). */
  adapter?: string;
  prompt?: Prompt;
  sampling?: ProtoSamplingParams;
}

export const MAX_REQUEST_ID_BYTES = 256;

/** Checks a StartGeneration.request_id. */
export function checkRequestId(id: string): void {
  if (id.length === 0) throw invalidField('request_id', ' must not be empty');
  const bytes = Buffer.byteLength(id, 'utf8');
  if (bytes > MAX_REQUEST_ID_BYTES) throw invalidField('request_id', ` must be at most ${MAX_REQUEST_ID_BYTES} bytes, got ${bytes}`);
}

/** Token ids of a request field, against the vocabulary (a bad id would abort the engine). */
export function checkTokenIds(field: string, ids: readonly number[], vocabSize: number): void {
  for (const id of ids) {
    if (id < 0 || id >= vocabSize) throw invalidField(field, `: token id ${id} is outside the vocabulary [0, ${vocabSize})`);
  }
}

/** Token input is checked against the vocabulary here, as the engine would abort on a bad id. */
export function toPromptInput(prompt: Prompt | undefined, model: ModelInfo): PromptInput {
  const input = prompt?.input;
  switch (input?.case) {
    case 'text':
      if (input.value.length === 0) throw invalidField('prompt.text', ' must not be empty');
      return { kind: 'text', text: input.value, addSpecialTokens: prompt?.addSpecialTokens ?? true };
    case 'chat': {
      if (!model.hasChatTemplate) {
        throw new RequestError(ErrorCode.FAILED_PRECONDITION, `model "${model.id}" has no chat template; send text or token ids`);
      }
      const messages = input.value.messages;
      if (messages.length === 0) throw invalidField('prompt.chat.messages', ' must hold at least one message');
      messages.forEach((m, i) => {
        if (m.role.length === 0) throw invalidField('prompt.chat.messages', `[${i}].role must not be empty`);
      });
      const tools = toTools(input.value.tools);
      return {
        kind: 'chat',
        messages: messages.map((m) => ({
          role: m.role,
          content: m.content,
          ...(m.toolCalls.length ? { toolCalls: m.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })) } : {}),
          ...(m.toolCallId ? { toolCallId: m.toolCallId } : {}),
          ...(m.name ? { name: m.name } : {}),
        })),
        addGenerationPrompt: input.value.addGenerationPrompt ?? true,
        tools,
        toolChoice: toToolChoice(input.value.toolChoice, tools),
        parallelToolCalls: input.value.parallelToolCalls ?? false,
      };
    }
    case 'tokens': {
      const ids = input.value.ids;
      if (ids.length === 0) throw invalidField('prompt.tokens.ids', ' must not be empty');
      checkTokenIds('prompt.tokens.ids', ids, model.vocabSize);
      return { kind: 'tokens', tokenIds: [...ids] };
    }
    default:
      throw invalidField('prompt', ' is required: text, chat messages or token ids');
  }
}

/** The proto's tools, checked as OpenAI's function tools are (names, schemas, count). */
function toTools(tools: readonly ProtoTool[]): ToolDefinition[] {
  const openai = tools.map((t, i) => {
    let parameters: unknown;
    if (t.parameters) {
      try {
        parameters = JSON.parse(t.parameters);
      } catch (err) {
        throw invalidField('prompt.chat.tools', `[${i}].parameters is not valid JSON (${(err as Error).message})`);
      }
    }
    return { type: 'function', function: { name: t.name, description: t.description || undefined, parameters } };
  });
  return withFieldPath(() => validateTools(openai));
}

function toToolChoice(choice: ProtoToolChoice | undefined, tools: ToolDefinition[]): ToolChoice {
  const c = choice?.choice;
  const modes: Record<ToolChoiceMode, string | undefined> = {
    [ToolChoiceMode.UNSPECIFIED]: undefined,
    [ToolChoiceMode.AUTO]: 'auto',
    [ToolChoiceMode.NONE]: 'none',
    [ToolChoiceMode.REQUIRED]: 'required',
  };
  const openai =
    c?.case === 'mode' ? modes[c.value] : c?.case === 'function' ? { type: 'function', function: { name: c.value } } : undefined;
  return withFieldPath(() => validateToolChoice(openai, tools));
}

/** Runs a check of the text layer, reporting its InvalidArgumentError under the request's field path. */
function withFieldPath<T>(check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw fromInvalidArgument(e);
    throw e;
  }
}

function seedNumber(seed: bigint): number {
  const limit = BigInt(Number.MAX_SAFE_INTEGER);
  if (seed > limit || seed < -limit) throw invalidField('sampling.seed', ` must be in [-(2^53 - 1), 2^53 - 1], got ${seed}`);
  return Number(seed);
}

/**
 * Proto sampling parameters → the engine's, validated against the model. Unset fields take the
 * model's defaults (generation_config.json), then the built-in ones.
 */
export function toSamplingParams(s: ProtoSamplingParams | undefined, model: ModelInfo): SamplingParams {
  const d = defaultSamplingParams();
  const m = model.samplingDefaults;
  // A model's top_k beyond its vocabulary keeps every token, as the whole vocabulary does.
  const topK = s?.topK ?? (m.topK === undefined ? d.topK : Math.min(m.topK, model.vocabSize));
  const params: SamplingParams = {
    temperature: s?.temperature ?? m.temperature ?? d.temperature,
    topP: s?.topP ?? m.topP ?? d.topP,
    topK: topK === -1 ? 0 : topK, // the proto allows -1 for "off", as vLLM does
    minP: s?.minP ?? m.minP ?? d.minP,
    seed: s?.seed === undefined ? undefined : seedNumber(s.seed),
    repetitionPenalty: s?.repetitionPenalty ?? m.repetitionPenalty ?? d.repetitionPenalty,
    presencePenalty: s?.presencePenalty ?? d.presencePenalty,
    frequencyPenalty: s?.frequencyPenalty ?? d.frequencyPenalty,
    logitBias: { ...(s?.logitBias ?? d.logitBias) },
    maxTokens: s?.maxTokens,
    stop: [...(s?.stop ?? d.stop)],
    stopTokenIds: [...(s?.stopTokenIds ?? d.stopTokenIds)],
    ignoreEos: s?.ignoreEos ?? d.ignoreEos,
    logprobs: s?.logprobs ?? d.logprobs,
    topLogprobs: s?.topLogprobs ?? d.topLogprobs,
    structuredOutput: toStructuredOutput(s?.structuredOutput),
  };
  withFieldPath(() => {
    validateSamplingParams(params, model.vocabSize);
    if (params.structuredOutput) validateStructuredOutput(params.structuredOutput);
  });
  return params;
}

/** The sampling message's structured_output oneof → the engine's spec (checked by the caller). */
function toStructuredOutput(so: ProtoSamplingParams['structuredOutput'] | undefined): StructuredOutput | undefined {
  switch (so?.case) {
    case 'jsonSchema':
      return { type: 'json_schema', schema: so.value };
    case 'regex':
      return { type: 'regex', pattern: so.value };
    case 'choice':
      return { type: 'choice', choices: [...so.value.choices] };
    case 'grammar':
      return { type: 'grammar', ebnf: so.value };
    case 'jsonObject':
      return { type: 'json_object' };
    default:
      return undefined;
  }
}

/** A validated request for one generation, under a server-unique id (its engine request's too). */
export function toGenerateRequest(engineId: string, input: GenerationInput, model: ModelInfo, adapter?: string): GenerateRequest {
  const prompt = toPromptInput(input.prompt, model);
  // Refused here rather than after shipping megabytes of ids to the engine process.
  if (prompt.kind === 'tokens' && prompt.tokenIds.length >= model.contextLength) {
    throw invalidArgument(
      'prompt.tokens.ids',
      `this model's maximum context length is ${model.contextLength} tokens, but the prompt has ${prompt.tokenIds.length} tokens (at least one token must be left for the output)`,
    );
  }
  const request: GenerateRequest = { id: engineId, input: prompt, sampling: toSamplingParams(input.sampling, model) };
  return adapter === undefined ? request : { ...request, adapter };
}

/**
 * The request with the model's default token budget (generation_config's max_new_tokens) when it
 * gave none, cut to the context its prompt leaves, as vLLM does: a default never refuses a request.
 */
export function withDefaultMaxTokens(request: GenerateRequest, promptTokens: number, model: ModelInfo): GenerateRequest {
  const budget = model.samplingDefaults.maxTokens;
  if (request.sampling.maxTokens !== undefined || budget === undefined) return request;
  return { ...request, sampling: { ...request.sampling, maxTokens: Math.min(budget, model.contextLength - promptTokens) } };
}
