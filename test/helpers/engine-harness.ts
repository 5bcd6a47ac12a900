// Runs an EngineCore in-process on a tiny model, with the server's text layer around it (the
// engine works in token ids), and collects each request's events, so tests can drive steps one at a
// time and look at what each request received.
import { EngineCore } from '../../src/engine/engine-core.ts';
import { DEFAULT_ENGINE_OPTIONS, type CpuKernels, type EngineOptions } from '../../src/engine/engine-options.ts';
import { loadModel, type LoadedModel } from '../../src/engine/load-model.ts';
import {
  defaultSamplingParams,
  InvalidArgumentError,
  validateSamplingParams,
  type SamplingParams,
} from '../../src/engine/sampling-params.ts';
import type { FinishReason, GenerateRequest, GenerationEvent, PromptInput, Usage } from '../../src/text/generation.ts';
import { loadTokenizer } from '../../src/text/load-tokenizer.ts';
import { promptTokenIds } from '../../src/text/prompt-tokens.ts';
import { TextRequest } from '../../src/text/text-request.ts';
import type { Tokenizer } from '../../src/text/tokenizer.ts';
import { tmpdir } from 'node:os';

/** The CPU paths engine tests run on. */
export const CPU_KERNELS: CpuKernels[] = ['native', 'mlx'];

export interface RequestResult {
  events: GenerationEvent[];
  tokenIds: number[];
  text: string;
  finishReason?: FinishReason;
  stopReason?: string | number;
  usage?: Usage;
  error?: Extract<GenerationEvent, { type: 'error' }>;
  cachedTokens?: number;
}

export class EngineHarness {
  readonly core: EngineCore;
  readonly results = new Map<string, RequestResult>();
  /** The text side of each request in flight. */
  private readonly texts = new Map<string, TextRequest>();
  private nextId = 0;

  constructor(
    readonly model: LoadedModel,
    readonly tokenizer: Tokenizer,
    opts: Partial<EngineOptions> = {},
  ) {
    this.core = new EngineCore(model, { ...DEFAULT_ENGINE_OPTIONS, ...opts }, (e) => {
      // A refused duplicate id belongs to the second submit, not to the request in flight.
      if (e.type === 'error' && e.code === 'already_exists') return this.record(e);
      const text = this.texts.get(e.requestId);
      if (!text) return;
      const accepted = text.accept(e);
      for (const g of accepted.events) this.record(g);
      if (accepted.cancel) this.core.cancel(e.requestId);
      if (accepted.events.some((g) => g.type === 'finished' || g.type === 'error')) this.texts.delete(e.requestId);
    });
  }

  static async load(dir: string, opts: Partial<EngineOptions> = {}): Promise<EngineHarness> {
    const location = { id: 'tiny', format: 'hf' as const, path: dir };
    const model = await loadModel(location, { cacheDir: tmpdir(), cpuKernels: opts.cpuKernels });
    return new EngineHarness(model, await loadTokenizer(location), opts);
  }

  private record(e: GenerationEvent) {
    const r = this.result(e.requestId);
    r.events.push(e);
    if (e.type === 'delta') {
      r.tokenIds.push(...e.tokenIds);
      r.text += e.text;
    } else if (e.type === 'finished') {
      r.finishReason = e.finishReason;
      r.stopReason = e.stopReason;
      r.usage = e.usage;
    } else if (e.type === 'error') r.error = e;
    else if (e.type === 'started') r.cachedTokens = e.cachedTokens;
  }

  result(id: string): RequestResult {
    let r = this.results.get(id);
    if (!r) {
      r = { events: [], tokenIds: [], text: '' };
      this.results.set(id, r);
    }
    return r;
  }

  /** Submits a request; returns its id. */
  submit(input: PromptInput | number[], sampling: Partial<SamplingParams> = {}, id?: string): string {
    const requestId = id ?? `r${this.nextId++}`;
    const req: GenerateRequest = {
      id: requestId,
      input: Array.isArray(input) ? { kind: 'tokens', tokenIds: input } : input,
      sampling: { ...defaultSamplingParams(), temperature: 0, ...sampling },
    };
    let text: TextRequest;
    try {
      validateSamplingParams(req.sampling, this.model.config.vocabSize);
      text = new TextRequest(this.tokenizer, req, promptTokenIds(this.tokenizer, req.input, req.sampling.maxTokens, this.model.config));
    } catch (e) {
      // Refused as the service refuses it: before anything reaches the engine.
      if (!(e instanceof InvalidArgumentError)) throw e;
      this.record({ type: 'error', requestId, code: 'invalid_argument', message: e.message, field: e.field });
      return requestId;
    }
    if (!this.texts.has(requestId)) this.texts.set(requestId, text);
    this.core.submit(text.engineRequest(requestId));
    return requestId;
  }

  done(id: string): boolean {
    const r = this.results.get(id);
    return r !== undefined && (r.finishReason !== undefined || r.error !== undefined);
  }

  /** Steps until the given requests (default: all work) are done. */
  runUntilDone(ids?: string[], maxSteps = 10_000): void {
    for (let i = 0; i < maxSteps; i++) {
      if (ids ? ids.every((id) => this.done(id)) : !this.core.hasWork()) return;
      this.core.step();
    }
    throw new Error('engine did not finish in time');
  }

  /**
   * runUntilDone for requests that wait on something outside the step loop (a grammar compiling
   * in its worker): when the engine has nothing to step, it yields to the event loop.
   */
  async settle(ids?: string[], maxSteps = 10_000): Promise<void> {
    for (let i = 0; i < maxSteps; i++) {
      if (ids ? ids.every((id) => this.done(id)) : !this.core.hasWork() && this.core.stats().waiting === 0) return;
      if (this.core.hasWork()) this.core.step();
      else await new Promise((resolve) => setTimeout(resolve, 2));
    }
    throw new Error('engine did not finish in time');
  }

  /** Greedy generation of one request alone, to completion. */
  generate(input: PromptInput | number[], sampling: Partial<SamplingParams> = {}): RequestResult {
    const id = this.submit(input, sampling);
    this.runUntilDone([id]);
    return this.result(id);
  }
}
