// One generation seen from the text layer: its prompt's token ids and the engine request made of
// them, and the translation of the engine's token events back into events with text. Stop strings
// are matched here; when one completes, the generation ends at once ('stop', the string as the
// reason) and the caller cancels the engine request (vLLM's abort pattern); the engine's own end
// of it is then dropped.
import type { EngineEvent, FinishReason as EngineFinishReason, EngineRequest, TokenIdLogprob } from '../engine/request.ts';
import type { StructuredOutput } from '../engine/structured-output.ts';
import type { FinishReason, GenerateRequest, GenerationEvent, TokenLogprob } from './generation.ts';
import { OutputProcessor } from './output-processor.ts';
import type { Tokenizer } from './tokenizer.ts';
import { mistralToolCallId } from './tool-calls/tool-call-id.ts';
import { ToolCallParser } from './tool-calls/tool-call-parser.ts';
import { toolCallGrammar } from './tool-calls/tool-grammar.ts';
import type { ParsedToolCall } from './tool-calls/tool-types.ts';

export interface Accepted {
  events: GenerationEvent[];
  /** A stop string ended the generation: cancel the engine request. */
  cancel: boolean;
}

export class TextRequest {
  private readonly output: OutputProcessor;
  /** Tokens that end generation (the engine stops on them); they add no text. */
  private readonly stopIds: ReadonlySet<number>;
  private promptTokens = 0;
  private cachedTokens = 0;
  private completionTokens = 0;
  /** The generation ended here (a stop string); the engine's remaining events are dropped. */
  private ended = false;
  private started = false;
  /** Finds the model's tool calls in its output, when the request gave tools. */
  private readonly toolCalls?: ToolCallParser;
  /** The grammar of tool calls, when tool_choice asks for one. */
  private readonly toolGrammar?: StructuredOutput;
  private calledTools = false;

  constructor(
    private readonly tokenizer: Tokenizer,
    readonly request: GenerateRequest,
    /** The prompt, tokenized (prompt-tokens.ts). */
    readonly promptTokenIds: number[],
  ) {
    const s = request.sampling;
    this.stopIds = new Set([...s.stopTokenIds, ...(s.ignoreEos ? [] : tokenizer.eosTokenIds)]);
    this.output = new OutputProcessor(tokenizer, s.stop);
    const input = request.input;
    const choice = input.kind === 'chat' ? (input.toolChoice ?? { mode: 'auto' }) : undefined;
    if (input.kind === 'chat' && input.tools?.length && choice && !('mode' in choice && choice.mode === 'none')) {
      const format = tokenizer.toolCallFormat;
      this.toolCalls = new ToolCallParser(format, format === 'mistral' ? mistralToolCallId : undefined);
      const forced = 'function' in choice || choice.mode === 'required';
      // A client's own output format wins over the optional (auto) tool grammar, not over a required call.
      if (forced || !s.structuredOutput) {
        const tag = toolCallGrammar(input.tools, choice, input.parallelToolCalls ?? false, format);
        if (tag) this.toolGrammar = { type: 'structural_tag', tag: JSON.stringify(tag) };
      }
    }
  }

  /** What the engine computes for this request, under `engineId`. */
  engineRequest(engineId: string): EngineRequest {
    const { stop: _stop, ignoreEos: _ignoreEos, ...sampling } = this.request.sampling;
    const structuredOutput = this.toolGrammar ?? sampling.structuredOutput;
    return {
      id: engineId,
      promptTokenIds: this.promptTokenIds,
      sampling: { ...sampling, structuredOutput, stopTokenIds: [...this.stopIds] },
      ...(this.request.adapter === undefined ? {} : { adapter: this.request.adapter }),
    };
  }

  /** Translates one engine event (of this request) into events for the client. */
  accept(e: EngineEvent): Accepted {
    const requestId = this.request.id;
    if (this.ended) return { events: [], cancel: false };
    switch (e.type) {
      case 'started':
        this.started = true;
        this.promptTokens = e.promptTokens;
        this.cachedTokens = e.cachedTokens;
        return { events: [{ ...e, requestId }], cancel: false };
      case 'error':
        return { events: [{ ...e, requestId }], cancel: false };
      case 'tokens': {
        const events: GenerationEvent[] = [];
        for (let i = 0; i < e.tokenIds.length; i++) {
          const tokenId = e.tokenIds[i];
          this.completionTokens++;
          const logprobs = e.logprobs ? [this.describe(e.logprobs[i])] : undefined;
          const step = this.stopIds.has(tokenId) ? { text: '' } : this.output.push(tokenId);
          const stopped = 'stop' in step && step.stop !== undefined;
          events.push({ type: 'delta', requestId, tokenIds: [tokenId], logprobs, ...this.content(step.text, stopped) });
          if (stopped) {
            this.ended = true;
            events.push({ type: 'finished', requestId, finishReason: this.reason('stop'), stopReason: step.stop, usage: this.usage() });
            return { events, cancel: true };
          }
        }
        return { events, cancel: false };
      }
      case 'finished': {
        this.ended = true;
        const events: GenerationEvent[] = [];
        // Cancelled while still queued, the engine never started it: clients still see the one
        // documented order, started → deltas → finished.
        if (!this.started) events.push({ type: 'started', requestId, promptTokens: this.promptTokenIds.length, cachedTokens: 0 });
        const tail = this.content(this.output.flush(), true);
        if (tail.text || tail.toolCalls) events.push({ type: 'delta', requestId, tokenIds: [], ...tail });
        events.push({
          type: 'finished',
          requestId,
          finishReason: this.reason(e.finishReason),
          stopReason: e.stopTokenId,
          usage: e.usage,
          error: e.error,
        });
        return { events, cancel: false };
      }
    }
  }

  /** Output text → the content the client sees and the tool calls it completes; `last`: the output ended. */
  private content(text: string, last: boolean): { text: string; toolCalls?: ParsedToolCall[] } {
    if (!this.toolCalls) return { text };
    const found = this.toolCalls.push(text);
    if (last) {
      const rest = this.toolCalls.finish();
      found.content += rest.content;
      found.calls.push(...rest.calls);
    }
    if (found.calls.length === 0) return { text: found.content };
    this.calledTools = true;
    return { text: found.content, toolCalls: found.calls };
  }

  /** A generation that called tools and stopped ends with 'tool_calls', as OpenAI's API says. */
  private reason(engineReason: EngineFinishReason): FinishReason {
    return this.calledTools && engineReason === 'stop' ? 'tool_calls' : engineReason;
  }

  private usage() {
    return { promptTokens: this.promptTokens, completionTokens: this.completionTokens, cachedTokens: this.cachedTokens };
  }

  private describe(l: TokenIdLogprob): TokenLogprob {
    const token = (tokenId: number) => ({
      tokenId,
      token: this.tokenizer.tokenText(tokenId),
      bytes: Array.from(this.tokenizer.tokenBytes(tokenId)),
    });
    return { ...token(l.tokenId), logprob: l.logprob, top: l.top.map((t) => ({ ...token(t.tokenId), logprob: t.logprob })) };
  }
}
