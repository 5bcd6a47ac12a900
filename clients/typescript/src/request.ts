// What a caller writes (plain objects, numbers, strings) → the mlxserve.v1 request messages.
import type { MessageInitShape } from '@bufbuild/protobuf';
import { Code, GenerationServiceError } from './errors.ts';
import type { PromptSchema, SamplingParamsSchema } from './proto.ts';
import { toProtoTool, toProtoToolChoice, type Tool, type ToolCall, type ToolChoice } from './tools.ts';

export interface ChatMessage {
  /** "system", "user", "assistant" or "tool". */
  role: string;
  /** What they say; may be left out for an assistant turn that only calls tools. */
  content?: string;
  /** An assistant turn's tool calls (e.g. a completion's `toolCalls`, passed back). */
  toolCalls?: ToolCall[];
  /** A "tool" message: the id of the call it answers (toolMessage() fills it in). */
  toolCallId?: string;
  /** A "tool" message: the function's name (optional). */
  name?: string;
}

/** Chat messages, with the tools the model may call. */
export interface ChatInput {
  messages: ChatMessage[];
  /** End with the opening of an assistant turn (default true). */
  addGenerationPrompt?: boolean;
  /** Functions the model may call; its calls come back as `toolCalls` and end it with 'tool_calls'. */
  tools?: Tool[];
  /** Default 'auto' when tools are given. */
  toolChoice?: ToolChoice;
  /** Let the model call several tools in one answer (default false: one call). */
  parallelToolCalls?: boolean;
}

/**
 * The input: a string (raw text), raw text with options, chat messages (rendered with the
 * model's chat template) or token ids.
 */
export type PromptInput = string | { text: string; addSpecialTokens?: boolean } | ChatInput | { tokenIds: number[] };

/** Sampling parameters; unset ones take the server's defaults (see proto/mlxserve/v1/sampling.proto). */
export interface SamplingOptions {
  /** 0 is greedy. [0, 2], default 1. */
  temperature?: number;
  /** (0, 1], default 1. */
  topP?: number;
  /** 0 or -1: off. Default 0. */
  topK?: number;
  /** [0, 1], default 0. */
  minP?: number;
  /** Same seed, prompt and parameters: same tokens. */
  seed?: number | bigint;
  /** (0, 2], default 1. */
  repetitionPenalty?: number;
  /** [-2, 2], default 0. */
  presencePenalty?: number;
  /** [-2, 2], default 0. */
  frequencyPenalty?: number;
  /** Token id → bias in [-100, 100]. */
  logitBias?: Record<number, number>;
  /** Default: until a stop condition or the end of the context window. */
  maxTokens?: number;
  /** At most 16 non-empty strings; the matched one is not returned. */
  stop?: string[];
  stopTokenIds?: number[];
  ignoreEos?: boolean;
  /** Return each token's log probability. */
  logprobs?: boolean;
  /** Also return this many alternatives per token, [0, 20]. */
  topLogprobs?: number;

  // Structured output: at most one of the following constrains the output to a format.
  /** A JSON Schema (an object, or JSON text) the output is an instance of. */
  jsonSchema?: object | string;
  /** A regular expression the whole output matches. */
  regex?: string;
  /** The output is exactly one of these strings. */
  choice?: string[];
  /** An EBNF grammar (XGrammar's dialect, as GBNF: `root ::= ...`). */
  grammar?: string;
  /** Any JSON object (OpenAI's `response_format: { type: 'json_object' }`). */
  jsonObject?: boolean;
}

export interface GenerationRequest {
  prompt: PromptInput;
  sampling?: SamplingOptions;
  /** A model id from listModels() (a LoRA adapter's name selects it); default: the server's default model. */
  model?: string;
  /** A LoRA adapter to generate with (its name), instead of naming it in `model`. */
  adapter?: string;
}

export function toProtoPrompt(prompt: PromptInput): MessageInitShape<typeof PromptSchema> {
  if (typeof prompt === 'string') return { input: { case: 'text', value: prompt } };
  if ('text' in prompt) return { input: { case: 'text', value: prompt.text }, addSpecialTokens: prompt.addSpecialTokens };
  if ('messages' in prompt) {
    const { messages, addGenerationPrompt, tools, toolChoice, parallelToolCalls } = prompt;
    return {
      input: {
        case: 'chat',
        value: {
          messages,
          addGenerationPrompt,
          tools: tools?.map(toProtoTool),
          toolChoice: toProtoToolChoice(toolChoice),
          parallelToolCalls,
        },
      },
    };
  }
  return { input: { case: 'tokens', value: { ids: prompt.tokenIds } } };
}

type SamplingInit = MessageInitShape<typeof SamplingParamsSchema>;

function toStructuredOutput(s: SamplingOptions): SamplingInit['structuredOutput'] {
  const given: NonNullable<SamplingInit['structuredOutput']>[] = [];
  if (s.jsonSchema !== undefined) {
    given.push({ case: 'jsonSchema', value: typeof s.jsonSchema === 'string' ? s.jsonSchema : JSON.stringify(s.jsonSchema) });
  }
  if (s.regex !== undefined) given.push({ case: 'regex', value: s.regex });
  if (s.choice !== undefined) given.push({ case: 'choice', value: { choices: s.choice } });
  if (s.grammar !== undefined) given.push({ case: 'grammar', value: s.grammar });
  if (s.jsonObject) given.push({ case: 'jsonObject', value: {} });
  if (given.length > 1) {
    throw new GenerationServiceError(
      `give at most one structured output format, got ${given.map((g) => g.case).join(', ')}`,
      Code.InvalidArgument,
      'sampling.structured_output',
    );
  }
  return given[0];
}

export function toProtoSampling(s: SamplingOptions | undefined): SamplingInit | undefined {
  if (!s) return undefined;
  const { seed, jsonSchema, regex, choice, grammar, jsonObject, ...rest } = s;
  return { ...rest, seed: seed === undefined ? undefined : BigInt(seed), structuredOutput: toStructuredOutput(s) };
}

/** The fields StartGeneration, GenerateStreamRequest and CompleteRequest share. */
export function toProtoGeneration(r: GenerationRequest) {
  return { model: r.model, adapter: r.adapter, prompt: toProtoPrompt(r.prompt), sampling: toProtoSampling(r.sampling) };
}
