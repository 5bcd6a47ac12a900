// Runs an EngineCore in-process on a tiny model and collects its events per request, so tests can
// drive steps one at a time and look at what each request received.
import { EngineCore } from '../../src/engine/engine-core.ts';
import { DEFAULT_ENGINE_OPTIONS, type CpuKernels, type EngineOptions } from '../../src/engine/engine-options.ts';
import { loadModel, type LoadedModel } from '../../src/engine/load-model.ts';
import type { EngineEvent, FinishReason, GenerateRequest, PromptInput, Usage } from '../../src/engine/request.ts';
import { defaultSamplingParams, type SamplingParams } from '../../src/engine/sampling-params.ts';
import { tmpdir } from 'node:os';

/** The CPU paths engine tests run on. */
export const CPU_KERNELS: CpuKernels[] = ['native', 'mlx'];

export interface RequestResult {
  events: EngineEvent[];
  tokenIds: number[];
  text: string;
  finishReason?: FinishReason;
  stopReason?: string | number;
  usage?: Usage;
  error?: Extract<EngineEvent, { type: 'error' }>;
  cachedTokens?: number;
}

export class EngineHarness {
  readonly core: EngineCore;
  readonly results = new Map<string, RequestResult>();
  private nextId = 0;

  constructor(
    readonly model: LoadedModel,
    opts: Partial<EngineOptions> = {},
  ) {
    this.core = new EngineCore(model, { ...DEFAULT_ENGINE_OPTIONS, ...opts }, (e) =>
      this.record(e),
    );
  }

  static async load(dir: string, opts: Partial<EngineOptions> = {}): Promise<EngineHarness> {
    const model = await loadModel({ id: 'tiny', format: 'hf', path: dir }, { cacheDir: tmpdir(), cpuKernels: opts.cpuKernels });
    return new EngineHarness(model, opts);
  }

  private record(e: EngineEvent) {
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
    this.core.submit(req);
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

  /** Greedy generation of one request alone, to completion. */
  generate(input: PromptInput | number[], sampling: Partial<SamplingParams> = {}): RequestResult {
    const id = this.submit(input, sampling);
    this.runUntilDone([id]);
    return this.result(id);
  }
}
