// What every handler of the service shares: the engine, the model's tokenizer, whether the server
// takes new generation requests (engine ready, tokenizer loaded, not draining) and whether it says
// so to health checks (not while it leaves its balancer's pool before a drain), the model it
// serves, the generations in flight (so a graceful shutdown can wait for them), and where requests
// are logged and measured.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { EngineClient } from '../engine/engine-client.ts';
import type { EngineStats } from '../engine/request.ts';
import type { TokenizerPool } from '../text/tokenizer-pool.ts';
import { selectModel, type ModelSelection } from './adapter-selection.ts';
import { modelInfo, type ModelInfo, type ServedModel } from './model-info.ts';
import { ErrorCode } from '../gen/mlxserve/v1/generation_pb.ts';
import { EngineState } from '../gen/mlxserve/v1/generation_service_pb.ts';
import type { Logger } from '../log/logger.ts';
import { GenerationTelemetry, type CallInfo } from './generation-telemetry.ts';
import { RequestError } from './request-error.ts';
import type { RequestMetrics } from './request-metrics.ts';

export interface ServingStateOptions {
  /** Reported as ModelInfo.owned_by (OpenAI's `owned_by`). */
  ownedBy: string;
  logger: Logger;
  /** Log each request's prompt (off by default: prompts may hold private data). */
  logPrompts: boolean;
  requestMetrics: RequestMetrics;
  /** The model's aliases and sampling defaults. */
  served: ServedModel;
}

/**
 * Emits 'change' whenever `serving` may have changed (engine state or draining), and 'idle' when
 * the last generation in flight ends.
 */
export class ServingState extends EventEmitter {
  readonly startedAt = new Date();
  /** When the model was first loaded (ModelInfo.created). */
  loadedAt: Date | undefined;
  private drainingValue = false;
  private leavingValue = false;
  private inFlightCount = 0;
  /** Engine request ids are unique per server; client ids are only unique per stream. */
  private readonly idPrefix = randomUUID().slice(0, 8);
  private nextId = 0;
  private tokenizerValue: TokenizerPool | undefined;

  constructor(
    readonly engine: EngineClient,
    readonly options: ServingStateOptions,
  ) {
    super();
    if (engine.state === 'ready') this.loadedAt = new Date();
    engine.on('state', this.onEngineState);
  }

  private readonly onEngineState = (s: string): void => {
    if (s === 'ready') this.loadedAt ??= new Date();
    this.emit('change');
  };

  /** The model's tokenizer, once loaded (the server loads it beside the engine). */
  get text(): TokenizerPool | undefined {
    return this.tokenizerValue;
  }

  set text(pool: TokenizerPool | undefined) {
    this.tokenizerValue = pool;
    this.emit('change');
  }

  /** The tokenizer, or UNAVAILABLE while it loads. */
  tokenizer(): TokenizerPool {
    if (!this.tokenizerValue) throw new RequestError(ErrorCode.UNAVAILABLE, 'the tokenizer is not loaded yet');
    return this.tokenizerValue;
  }

  /** Stops following the engine (the server is closing; the engine may outlive it). */
  detach(): void {
    this.engine.off('state', this.onEngineState);
  }

  /**
   * What health reports: new generation requests are taken (the engine is ready, the tokenizer
   * loaded, the server not draining) and the server is not leaving its balancer's pool.
   */
  get serving(): boolean {
    return this.engine.state === 'ready' && this.tokenizerValue !== undefined && !this.drainingValue && !this.leavingValue;
  }

  /**
   * While leaving, health says NOT_SERVING (and GetServerStatus DRAINING) but new requests are
   * still taken: a balancer's checks take the server out of its pool before the drain refuses
   * anything, so no request it routes here in between is lost.
   */
  get leaving(): boolean {
    return this.leavingValue;
  }

  set leaving(on: boolean) {
    if (on === this.leavingValue) return;
    this.leavingValue = on;
    this.emit('change');
  }

  get draining(): boolean {
    return this.drainingValue;
  }

  set draining(on: boolean) {
    if (on === this.drainingValue) return;
    this.drainingValue = on;
    this.emit('change');
  }

  get engineState(): EngineState {
    if (this.drainingValue || this.leavingValue) return EngineState.DRAINING;
    switch (this.engine.state) {
      case 'starting':
        return EngineState.STARTING;
      case 'ready':
        return EngineState.READY;
      case 'restarting':
        return EngineState.RESTARTING;
      case 'stopped':
        return EngineState.DRAINING;
      case 'failed':
        return EngineState.FAILED;
    }
  }

  /**
   * The model a request names (its id, an alias, or "default"; '' or unset: the default; a LoRA
   * adapter's name: the base model it runs on). Throws NOT_FOUND or UNAVAILABLE.
   */
  model(name: string | undefined): ModelInfo {
    return this.select(name, undefined).model;
  }

  /** The base model, as the engine loaded it and the server serves it. Throws UNAVAILABLE before it is loaded. */
  baseModel(): ModelInfo {
    const engine = this.engine.modelInfo;
    if (!engine) throw new RequestError(ErrorCode.UNAVAILABLE, `the model is not loaded yet (the engine is ${this.engine.state})`);
    return modelInfo(engine, this.tokenizer().tokenizer, this.options.served);
  }

  /** The model and LoRA adapter a request's `model` and `adapter` select. Throws NOT_FOUND, INVALID_ARGUMENT or UNAVAILABLE. */
  select(model: string | undefined, adapter: string | undefined): ModelSelection {
    return selectModel(this.baseModel(), this.engine.adapters, model, adapter);
  }

  /** Checks that a new generation may start now. Throws UNAVAILABLE while starting, restarting or draining. */
  admitGeneration(): void {
    if (this.drainingValue) throw new RequestError(ErrorCode.UNAVAILABLE, 'the server is shutting down and takes no new requests');
    if (this.engine.state !== 'ready') throw new RequestError(ErrorCode.UNAVAILABLE, this.engine.unavailableReason());
    this.tokenizer();
  }

  newEngineRequestId(): string {
    return `${this.idPrefix}-${++this.nextId}`;
  }

  /** Starts recording one generation request (its metrics and log lines). */
  telemetry(call: CallInfo): GenerationTelemetry {
    return new GenerationTelemetry(this.options.requestMetrics, this.options.logger, call, this.options.logPrompts);
  }

  /** The engine's latest figures, at once (undefined while it is not ready). */
  engineStats(): EngineStats | undefined {
    return this.engine.stats();
  }

  /** Counts a generation in flight; call the returned function once when it ends. */
  beginGeneration(): () => void {
    this.inFlightCount++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--this.inFlightCount === 0) this.emit('idle');
    };
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  /** Resolves when no generation is in flight, or false after timeoutMs. */
  whenIdle(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    if (this.inFlightCount === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (idle: boolean) => {
        clearTimeout(timer);
        this.off('idle', onIdle);
        resolve(idle);
      };
      const onIdle = () => done(true);
      const timer = Number.isFinite(timeoutMs) ? setTimeout(() => done(false), timeoutMs) : undefined;
      this.on('idle', onIdle);
    });
  }
}
