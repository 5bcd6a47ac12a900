// The server's handle on the engine: starts the engine process, supervises it, and multiplexes
// requests over its IPC channel. If the engine process dies, every request in flight (running or
// queued) ends with an 'unavailable' error at once, the process is restarted (with backoff when it
// keeps dying, see restart-policy.ts), and the next request works again.
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { engineEnvironment } from './engine-environment.ts';
import type { AdapterErrorCode, EngineProcessConfig, FromEngine, ToEngine } from './engine-protocol.ts';
import type { GrammarVocabulary } from './grammar/grammar-vocabulary.ts';
import type { AdapterInfo, EngineEvent, EngineModelInfo, EngineRequest, EngineStats } from './request.ts';
import { siblingModule } from '../util/sibling-module.ts';
import { DEFAULT_RESTART_POLICY, quickFailuresAfter, restartDelay, type RestartPolicy } from './restart-policy.ts';

export type EngineState = 'starting' | 'ready' | 'restarting' | 'stopped' | 'failed';

/** Events a request's stream delivers; it ends after 'finished' or 'error'. */
class RequestStream {
  private readonly queue: EngineEvent[] = [];
  private wake: (() => void) | undefined;
  done = false;

  push(e: EngineEvent): void {
    this.queue.push(e);
    if (e.type === 'finished' || e.type === 'error') this.done = true;
    this.wake?.();
  }

  async *iterate(onAbandon: () => void): AsyncGenerator<EngineEvent> {
    let ended = false;
    try {
      for (;;) {
        while (this.queue.length > 0) {
          const e = this.queue.shift() as EngineEvent;
          if (e.type === 'finished' || e.type === 'error') ended = true;
          yield e;
          if (ended) return;
        }
        await new Promise<void>((r) => (this.wake = r));
        this.wake = undefined;
      }
    } finally {
      if (!ended) onAbandon();
    }
  }
}

export interface EngineClientOptions extends EngineProcessConfig {
  /** Restart the engine process when it dies (default true). */
  restart?: boolean;
  /** When to restart and when to give up (default DEFAULT_RESTART_POLICY). */
  restartPolicy?: Partial<RestartPolicy>;
  /** Called with load progress (layers loaded / total). */
  onProgress?: (done: number, total: number) => void;
  /** Extra environment for the engine process. */
  env?: NodeJS.ProcessEnv;
}

export class EngineClient extends EventEmitter {
  private child: ChildProcess | undefined;
  private streams = new Map<string, RequestStream>();
  private info: EngineModelInfo | undefined;
  /** The engine's latest figures (it sends them as it works; see engine-process.ts). */
  private latestStats: EngineStats | undefined;
  private stateValue: EngineState = 'stopped';
  private ready: Promise<EngineModelInfo> | undefined;
  private readonly restartPolicy: RestartPolicy;
  /** When the current process became ready (undefined while it starts). */
  private readyAt: number | undefined;
  private everReady = false;
  private quickFailures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Why the last process stopped, for the messages of refused requests. */
  private lastExit: string | undefined;
  /** What the current process reported when it could not load the model. */
  private startFailure: string | undefined;
  restarts = 0;
  private grammarVocabulary: GrammarVocabulary | undefined;
  /** The LoRA adapters served (a restarted engine loads the same ones). */
  private adapterList: AdapterInfo[] = [];
  private readonly adapterCalls = new Map<number, { resolve: (a: AdapterInfo[]) => void; reject: (e: Error) => void }>();
  private nextCallId = 1;

  constructor(private readonly opts: EngineClientOptions) {
    super();
    this.restartPolicy = { ...DEFAULT_RESTART_POLICY, ...opts.restartPolicy };
  }

  get state(): EngineState {
    return this.stateValue;
  }

  private setState(s: EngineState): void {
    this.stateValue = s;
    this.emit('state', s);
  }

  get modelInfo(): EngineModelInfo | undefined {
    return this.info;
  }

  /** Starts the engine process; resolves when the model is loaded. */
  start(): Promise<EngineModelInfo> {
    this.setState(this.restarts > 0 ? 'restarting' : 'starting');
    const child = fork(siblingModule(import.meta.url, 'engine-process'), [], {
      execArgv: [...process.execArgv.filter((a) => !a.startsWith('--inspect')), '--expose-gc'],
      env: engineEnvironment({ ...process.env, ...this.opts.env }, this.opts.engine.threads),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    this.child = child;
    this.ready = new Promise<EngineModelInfo>((resolve, reject) => {
      child.on('message', (raw) => {
        const m = raw as FromEngine;
        if (m.type === 'ready') {
          this.info = m.info;
          this.adapterList = m.info.adapters;
          this.readyAt = performance.now();
          this.everReady = true;
          this.setState('ready');
          resolve(m.info);
        } else if (m.type === 'fatal') {
          // The process exits next; onExit decides whether to try again.
          this.startFailure = m.message;
          reject(new Error(`engine failed to start: ${m.message}`));
        } else this.onMessage(m);
      });
      // Sending to a process that just died fails asynchronously with this event; without a
      // listener it would end the server. The 'exit' that follows fails the requests.
      child.on('error', () => {});
      child.on('exit', (code, signal) => {
        if (this.child !== child) return;
        this.child = undefined;
        const why = signal ? `signal ${signal}` : `exit code ${code}`;
        if (this.stateValue === 'starting' || this.stateValue === 'restarting')
          reject(new Error(`engine process exited during start-up (${why})`));
        this.onExit(why);
      });
    });
    // After a restart the engine serves the adapters loaded at run time too.
    const loras = this.everReady ? this.adapterList.map(({ name, path }) => ({ name, path })) : this.opts.engine.loras;
    child.send({
      type: 'init',
      config: { model: this.opts.model, cacheDir: this.opts.cacheDir, engine: { ...this.opts.engine, loras } },
    } satisfies ToEngine);
    if (this.grammarVocabulary) child.send({ type: 'grammar-vocabulary', vocabulary: this.grammarVocabulary } satisfies ToEngine);
    return this.ready;
  }

  /**
   * Gives the engine (now and after every restart) the vocabulary its grammar compiler needs for
   * structured output; requests with structured output are refused until it has it.
   */
  setGrammarVocabulary(vocabulary: GrammarVocabulary): void {
    this.grammarVocabulary = vocabulary;
    this.child?.send({ type: 'grammar-vocabulary', vocabulary } satisfies ToEngine);
  }

  private onMessage(m: FromEngine): void {
    switch (m.type) {
      case 'progress':
        this.opts.onProgress?.(m.done, m.total);
        break;
      case 'events':
        if (m.stats) this.latestStats = m.stats;
        for (const e of m.events) {
          const s = this.streams.get(e.requestId);
          if (!s) continue;
          s.push(e);
          if (s.done) this.streams.delete(e.requestId);
        }
        break;
      case 'stats':
        this.latestStats = m.stats;
        break;
      case 'adapter-result': {
        const call = this.adapterCalls.get(m.callId);
        this.adapterCalls.delete(m.callId);
        this.adapterList = m.adapters;
        if (this.info) this.info = { ...this.info, adapters: m.adapters };
        if (m.error) call?.reject(new AdapterError(m.error.code, m.error.message));
        else call?.resolve(m.adapters);
        break;
      }
    }
  }

  /** The LoRA adapters the engine serves now, in load order. */
  get adapters(): readonly AdapterInfo[] {
    return this.adapterList;
  }

  /**
   * Reads the adapter in `path` (mlx-lm's or PEFT's format) and serves it as `name`. Rejects with
   * an AdapterError: invalid_argument (a bad file, naming it and the field), already_exists.
   */
  async loadAdapter(name: string, path: string): Promise<AdapterInfo> {
    const adapters = await this.adapterCall({ type: 'load-adapter', callId: 0, name, path });
    return adapters.find((a) => a.name === name) as AdapterInfo;
  }

  /**
   * Stops serving an adapter: new requests naming it are refused at once (not_found); resolves
   * once the requests already using it have finished. Rejects with AdapterError not_found.
   */
  async unloadAdapter(name: string): Promise<void> {
    await this.adapterCall({ type: 'unload-adapter', callId: 0, name });
  }

  private adapterCall(msg: Extract<ToEngine, { type: 'load-adapter' | 'unload-adapter' }>): Promise<AdapterInfo[]> {
    const callId = this.nextCallId++;
    return new Promise<AdapterInfo[]>((resolve, reject) => {
      try {
        this.send({ ...msg, callId });
      } catch (e) {
        reject(e);
        return;
      }
      this.adapterCalls.set(callId, { resolve, reject });
    });
  }

  private onExit(why: string): void {
    const servedMs = this.readyAt === undefined ? 0 : performance.now() - this.readyAt;
    this.readyAt = undefined;
    this.lastExit = this.startFailure ? `${why} after failing to start: ${this.startFailure}` : why;
    this.startFailure = undefined;
    const message = `the engine process stopped (${why}); the request was lost and the engine is restarting`;
    for (const [id, s] of this.streams) s.push({ type: 'error', requestId: id, code: 'unavailable', message });
    this.streams.clear();
    for (const call of this.adapterCalls.values()) call.reject(new EngineUnavailableError(`the engine process stopped (${why})`));
    this.adapterCalls.clear();
    this.latestStats = undefined;
    if (this.stateValue === 'stopped') return;
    // A model that never loaded is a configuration problem: the caller of start() sees why.
    if (this.opts.restart === false || !this.everReady) {
      this.setState('failed');
      return;
    }
    this.quickFailures = quickFailuresAfter(this.restartPolicy, this.quickFailures, servedMs);
    const delay = restartDelay(this.restartPolicy, this.quickFailures);
    if (delay === undefined) {
      this.setState('failed');
      this.emit(
        'error',
        new Error(`the engine process died ${this.quickFailures} times in a row (last: ${why}); it is not restarted again`),
      );
      return;
    }
    this.restarts++;
    this.setState('restarting');
    this.emit('restart', why, delay);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      // A failed start ends in onExit again, which backs off further or gives up.
      this.start().catch(() => {});
    }, delay);
  }

  /** Why requests are refused in the current state (for error messages). */
  unavailableReason(): string {
    if (this.stateValue === 'failed' && this.everReady) {
      return `the engine failed and is not restarted (it stopped ${this.quickFailures} times in a row; last: ${this.lastExit}); see the server log`;
    }
    if (this.stateValue === 'failed') return `the engine failed to start (${this.lastExit ?? 'see the server log'})`;
    return `the engine is ${this.stateValue}; retry later`;
  }

  private send(msg: ToEngine): void {
    if (!this.child || this.stateValue !== 'ready') throw new EngineUnavailableError(this.unavailableReason());
    this.child.send(msg);
  }

  /**
   * Submits a request and returns its events. Stopping the iteration early (break, return, a
   * thrown error) cancels the request in the engine.
   */
  generate(request: EngineRequest): AsyncGenerator<EngineEvent> {
    const stream = new RequestStream();
    if (this.streams.has(request.id)) {
      stream.push({
        type: 'error',
        requestId: request.id,
        code: 'already_exists',
        message: `request id "${request.id}" is already in use`,
      });
    } else if (this.stateValue !== 'ready' || !this.child) {
      stream.push({ type: 'error', requestId: request.id, code: 'unavailable', message: this.unavailableReason() });
    } else {
      this.streams.set(request.id, stream);
      this.send({ type: 'submit', request });
    }
    return stream.iterate(() => this.cancel(request.id));
  }

  cancel(requestId: string): void {
    if (!this.streams.has(requestId)) return;
    if (this.child && this.stateValue === 'ready') this.child.send({ type: 'cancel', requestId } satisfies ToEngine);
  }

  /**
   * The engine's latest figures, at once, whatever the engine is doing; undefined while it is not
   * ready (or has sent none yet).
   */
  stats(): EngineStats | undefined {
    return this.stateValue === 'ready' ? this.latestStats : undefined;
  }

  /** Number of requests whose streams are open. */
  get inFlight(): number {
    return this.streams.size;
  }

  /** The engine process id (for tests that kill it). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Stops the engine process. In-flight requests end with 'unavailable'. */
  async stop(): Promise<void> {
    const child = this.child;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.setState('stopped');
    if (!child) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.send({ type: 'shutdown' } satisfies ToEngine);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

export class EngineUnavailableError extends Error {
  override name = 'EngineUnavailableError';
}

/** Loading or unloading a LoRA adapter failed; `code` says how (as the engine's error codes). */
export class AdapterError extends Error {
  override name = 'AdapterError';
  constructor(
    readonly code: AdapterErrorCode,
    message: string,
  ) {
    super(message);
  }
}
