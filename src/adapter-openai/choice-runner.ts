// Runs the choices of one OpenAI request as GenerateStream calls (one per choice, all on the
// adapter's single HTTP/2 connection) and delivers their events. Every call shares the request's
// AbortSignal: a client that goes away aborts the signal, which cancels the calls and with them
// the engine's work. A call the service refuses fails the whole request before anything is sent.
import { create } from '@bufbuild/protobuf';
import { FinishReason, type GenerationStarted, type TokenLogprob, type Usage } from '../gen/mlxserve/v1/generation_pb.ts';
import type { ToolCall } from '../gen/mlxserve/v1/prompt_pb.ts';
import { GenerateStreamRequestSchema, type GenerateStreamResponse } from '../gen/mlxserve/v1/generation_service_pb.ts';
import type { GenerationPlan } from './generation-plan.ts';
import { errorFromGenerationError, errorFromThrown } from './grpc-error.ts';
import { serverError, unavailable } from './openai-error.ts';
import { choiceSeed } from './sampling-fields.ts';
import type { GenerationClient } from './service-connection.ts';

export type OpenAIFinishReason = 'stop' | 'length' | 'tool_calls';

export interface OpenedChoice {
  /** OpenAI's choice index: prompt by prompt, n per prompt. */
  index: number;
  promptIndex: number;
  started: GenerationStarted;
  events: AsyncIterator<GenerateStreamResponse>;
}

export type ChoiceEvent =
  | { type: 'delta'; index: number; text: string; tokenIds: number[]; logprobs: TokenLogprob[]; toolCalls: ToolCall[] }
  | { type: 'finished'; index: number; finishReason: OpenAIFinishReason; usage: Usage };

function startRequest(plan: GenerationPlan, promptIndex: number, choiceInPrompt: number) {
  return create(GenerateStreamRequestSchema, {
    model: plan.model,
    prompt: plan.prompts[promptIndex],
    sampling: {
      ...plan.sampling,
      // Each choice of a prompt has its own seed, so n seeded choices are not n copies.
      seed: plan.seed === undefined ? undefined : BigInt(choiceSeed(plan.seed, choiceInPrompt)),
    },
  });
}

/** What every call of one REST request carries: its cancel switch and metadata (the request id). */
export interface CallOptions {
  signal: AbortSignal;
  headers?: Record<string, string>;
}

async function openChoice(client: GenerationClient, plan: GenerationPlan, index: number, call: CallOptions): Promise<OpenedChoice> {
  const promptIndex = Math.floor(index / plan.n);
  const stream = client.generateStream(startRequest(plan, promptIndex, index % plan.n), call);
  const events = stream[Symbol.asyncIterator]();
  const first = await events.next();
  if (first.done || first.value.event.case !== 'started') {
    throw serverError('the generation service answered without a started event');
  }
  return { index, promptIndex, started: first.value.event.value, events };
}

/**
 * Starts every choice and waits until the service has admitted each one. If any is refused, the
 * others are cancelled (through `abort`) and the refusal is thrown as an OpenAIError.
 */
export async function openChoices(
  client: GenerationClient,
  plan: GenerationPlan,
  abort: AbortController,
  headers?: Record<string, string>,
): Promise<OpenedChoice[]> {
  const total = plan.prompts.length * plan.n;
  const settled = await Promise.allSettled(
    Array.from({ length: total }, (_, i) => openChoice(client, plan, i, { signal: abort.signal, headers })),
  );
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    abort.abort();
    throw errorFromThrown(failed.reason, plan.names);
  }
  return settled.map((s) => (s as PromiseFulfilledResult<OpenedChoice>).value);
}

/** One service event as a ChoiceEvent; throws the OpenAIError of a failed generation. */
function toChoiceEvent(index: number, response: GenerateStreamResponse, plan: GenerationPlan): ChoiceEvent | undefined {
  const e = response.event;
  if (e.case === 'delta') {
    const d = e.value;
    return { type: 'delta', index, text: d.text, tokenIds: d.tokenIds, logprobs: d.logprobs, toolCalls: d.toolCalls };
  }
  if (e.case !== 'finished') return undefined;
  const f = e.value;
  switch (f.finishReason) {
    case FinishReason.STOP:
      return { type: 'finished', index, finishReason: 'stop', usage: usageOf(f.usage) };
    case FinishReason.LENGTH:
      return { type: 'finished', index, finishReason: 'length', usage: usageOf(f.usage) };
    case FinishReason.TOOL_CALLS:
      return { type: 'finished', index, finishReason: 'tool_calls', usage: usageOf(f.usage) };
    case FinishReason.CANCELLED:
      throw unavailable('the server cancelled the request (it may be shutting down); retry');
    default:
      throw errorFromGenerationError(f.error, plan.names);
  }
}

function usageOf(u: Usage | undefined): Usage {
  return u ?? ({ promptTokens: 0, completionTokens: 0, cachedTokens: 0 } as Usage);
}

/** The events of one choice after `started`, ending with its `finished`. */
export async function* choiceEvents(choice: OpenedChoice, plan: GenerationPlan): AsyncGenerator<ChoiceEvent> {
  for (;;) {
    let next: IteratorResult<GenerateStreamResponse>;
    try {
      next = await choice.events.next();
    } catch (err) {
      throw errorFromThrown(err, plan.names);
    }
    if (next.done) throw serverError('the generation stream ended without a finished event');
    const event = toChoiceEvent(choice.index, next.value, plan);
    if (!event) continue;
    yield event;
    if (event.type === 'finished') return;
  }
}

/** The events of several choices, in the order they arrive. */
export async function* mergeChoiceEvents(choices: OpenedChoice[], plan: GenerationPlan): AsyncGenerator<ChoiceEvent> {
  const iterators = choices.map((c) => choiceEvents(c, plan));
  type Pulled = { i: number; result?: IteratorResult<ChoiceEvent>; error?: unknown };
  const pending = new Map<number, Promise<Pulled>>();
  // Settle every pull to a value: a rejected pull left pending must not become an unhandled rejection.
  const pull = (i: number) =>
    pending.set(
      i,
      iterators[i].next().then(
        (result) => ({ i, result }),
        (error: unknown) => ({ i, error }),
      ),
    );
  iterators.forEach((_, i) => pull(i));
  while (pending.size > 0) {
    const { i, result, error } = await Promise.race(pending.values());
    pending.delete(i);
    if (error !== undefined) throw error;
    if (!result || result.done) continue;
    pull(i);
    yield result.value;
  }
}

export interface CollectedChoice {
  index: number;
  promptIndex: number;
  started: GenerationStarted;
  text: string;
  tokenIds: number[];
  logprobs: TokenLogprob[];
  toolCalls: ToolCall[];
  finishReason: OpenAIFinishReason;
  usage: Usage;
}

/** Runs every choice to its end and gathers its text, tokens and logprobs. */
export async function collectChoices(choices: OpenedChoice[], plan: GenerationPlan): Promise<CollectedChoice[]> {
  return Promise.all(
    choices.map(async (c) => {
      const out: CollectedChoice = {
        index: c.index,
        promptIndex: c.promptIndex,
        started: c.started,
        text: '',
        tokenIds: [],
        logprobs: [],
        toolCalls: [],
        finishReason: 'stop',
        usage: usageOf(undefined),
      };
      for await (const e of choiceEvents(c, plan)) {
        if (e.type === 'delta') {
          out.text += e.text;
          out.tokenIds.push(...e.tokenIds);
          out.logprobs.push(...e.logprobs);
          out.toolCalls.push(...e.toolCalls);
        } else {
          out.finishReason = e.finishReason;
          out.usage = e.usage;
        }
      }
      return out;
    }),
  );
}
