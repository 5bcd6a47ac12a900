// The engine's side of constrained decoding: opens a grammar matcher for a request in the grammar
// worker (which compiles its format off the step loop, cached), then, step by step, reads the
// bitmask of allowed tokens the worker wrote and tells it which token was sampled. Waiting for a
// mask is short (the worker computes one in well under a millisecond, while the step's forward
// pass runs); only while the worker compiles a new grammar can it be long, and then the native
// backend leaves the rows whose mask is not ready out of that step (TokenConstraint.blocked).
import { Worker } from 'node:worker_threads';
import { siblingModule } from '../../util/sibling-module.ts';
import { InvalidArgumentError } from '../sampling-params.ts';
import { allowsAnyToken } from '../sampler/token-bitmask.ts';
import { structuredOutputKey, type StructuredOutput } from '../structured-output.ts';
import type { GrammarVocabulary } from './grammar-vocabulary.ts';
import { type FromWorker, STATE_HEADER, Status, stateWords, type ToWorker, type WorkerSetup } from './grammar-worker-protocol.ts';

/** A request's grammar state as the engine's step loop uses it. */
export interface TokenConstraint {
  /** The mask for the next token is ready (reading it will not wait). */
  readonly ready: boolean;
  /** The mask is not ready and the worker is compiling: reading it could wait for the compile. */
  readonly blocked: boolean;
  /** Bitmask of the tokens allowed next (bit i of word w: token 32·w + i); waits until it is ready. */
  allowedTokens(): Int32Array;
  /** Advances the grammar past a sampled token. */
  accept(tokenId: number): void;
  /** The grammar has ended the output (complete, stop token accepted) or could not follow it. */
  readonly ended: boolean;
  /** Of an ended grammar: it could not follow the output (a bug, or XGrammar failed), rather than completing. */
  readonly failed: boolean;
  close(): void;
}

/** What the engine core needs to constrain requests. */
export interface ConstraintProvider {
  /**
   * Compiles (or finds cached) the format and opens a matcher; rejects with an InvalidArgumentError
   * whose field is the spec's type.
   */
  open(spec: StructuredOutput, stopTokenIds: readonly number[]): Promise<TokenConstraint>;
  close(): Promise<void>;
}

export interface GrammarMatchersOptions {
  /** Compiled grammars each worker keeps. */
  cacheSize?: number;
}

/** How long one wait for a mask may block before the wait is reported as a failure. */
const MASK_WAIT_LIMIT_MS = 60_000;

interface Opening {
  resolve(): void;
  reject(err: Error): void;
}

class GrammarWorker {
  readonly worker: Worker;
  readonly control = new Int32Array(new SharedArrayBuffer(4));
  readonly opening = new Map<number, Opening>();
  open = 0;
  poisoned = false;
  /** The thread is gone: its matchers will never answer. */
  dead = false;
  onPoisoned?: () => void;

  constructor(vocabulary: GrammarVocabulary, cacheSize: number) {
    const setup: WorkerSetup = { vocabulary, cacheSize, control: this.control.buffer as SharedArrayBuffer };
    this.worker = new Worker(siblingModule(import.meta.url, 'grammar-worker'), { workerData: setup });
    this.worker.unref();
    this.worker.on('message', (m: FromWorker) => this.receive(m));
    this.worker.on('error', (err) => this.failAll(`the grammar worker failed: ${err.message}`));
    this.worker.on('exit', () => this.failAll('the grammar worker exited'));
  }

  get compiling(): boolean {
    return Atomics.load(this.control, 0) === 1;
  }

  post(m: ToWorker): void {
    this.worker.postMessage(m);
  }

  private receive(m: FromWorker): void {
    if (m.type === 'poisoned') {
      this.poisoned = true;
      this.onPoisoned?.();
      return;
    }
    const waiter = this.opening.get(m.id);
    if (!waiter) return;
    this.opening.delete(m.id);
    if (m.type === 'opened') waiter.resolve();
    else waiter.reject(m.retry ? new RetryError(m.reason) : new Error(m.reason));
  }

  private failAll(reason: string): void {
    this.dead = true;
    for (const w of this.opening.values()) w.reject(new Error(reason));
    this.opening.clear();
  }
}

class RetryError extends Error {}

export class GrammarMatchers implements ConstraintProvider {
  private current: GrammarWorker | undefined;
  private readonly retired = new Set<GrammarWorker>();
  private nextId = 1;
  private readonly words: number;
  private readonly cacheSize: number;

  constructor(
    private readonly vocabulary: GrammarVocabulary,
    opts: GrammarMatchersOptions = {},
  ) {
    this.words = stateWords(vocabulary.vocabSize);
    this.cacheSize = opts.cacheSize ?? 64;
  }

  async open(spec: StructuredOutput, stopTokenIds: readonly number[]): Promise<TokenConstraint> {
    for (let attempt = 0; ; attempt++) {
      const worker = this.worker();
      const id = this.nextId++;
      const state = new Int32Array(new SharedArrayBuffer(this.words * 4));
      worker.open++;
      try {
        await new Promise<void>((resolve, reject) => {
          worker.opening.set(id, { resolve, reject });
          worker.post({
            type: 'open',
            id,
            key: structuredOutputKey(spec),
            spec,
            stopTokenIds: [...stopTokenIds],
            state: state.buffer as SharedArrayBuffer,
          });
        });
      } catch (err) {
        this.release(worker);
        if (err instanceof RetryError && attempt < 2) continue;
        // Named after the spec's type, as validateStructuredOutput names its errors.
        throw InvalidArgumentError.ofField(spec.type, ` could not be compiled: ${(err as Error).message}`);
      }
      return new WorkerConstraint(id, state, worker, () => this.release(worker));
    }
  }

  async close(): Promise<void> {
    const all = [...this.retired, ...(this.current ? [this.current] : [])];
    this.current = undefined;
    this.retired.clear();
    await Promise.all(all.map((w) => w.worker.terminate()));
  }

  /** The worker new requests go to; one whose XGrammar instance aborted serves its matchers until they close. */
  private worker(): GrammarWorker {
    if (!this.current || this.current.poisoned || this.current.dead) {
      if (this.current) this.retire(this.current);
      const w = new GrammarWorker(this.vocabulary, this.cacheSize);
      w.onPoisoned = () => {
        if (this.current === w) this.current = undefined;
        this.retire(w);
      };
      this.current = w;
    }
    return this.current;
  }

  private retire(w: GrammarWorker): void {
    this.retired.add(w);
    if (w.open === 0) this.stopRetired(w);
  }

  private release(w: GrammarWorker): void {
    w.open--;
    if (w.open === 0 && this.retired.has(w)) this.stopRetired(w);
  }

  private stopRetired(w: GrammarWorker): void {
    this.retired.delete(w);
    void w.worker.terminate();
  }
}

class WorkerConstraint implements TokenConstraint {
  /** Versions asked for: the open, then one per accepted token. */
  private expected = 1;
  private closed = false;

  constructor(
    private readonly id: number,
    private readonly state: Int32Array,
    private readonly worker: GrammarWorker,
    private readonly onClose: () => void,
  ) {}

  get ready(): boolean {
    return Atomics.load(this.state, 0) >= this.expected;
  }

  get blocked(): boolean {
    return !this.ready && this.worker.compiling;
  }

  get failed(): boolean {
    this.wait();
    return Atomics.load(this.state, 1) === Status.Failed;
  }

  get ended(): boolean {
    this.wait();
    return (
      Atomics.load(this.state, 1) !== Status.Running ||
      !allowsAnyToken(this.state.subarray(STATE_HEADER), (this.state.length - STATE_HEADER) * 32)
    );
  }

  allowedTokens(): Int32Array {
    this.wait();
    return this.state.subarray(STATE_HEADER);
  }

  accept(tokenId: number): void {
    if (this.closed) return;
    this.expected++;
    this.worker.post({ type: 'accept', id: this.id, tokenId });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.worker.post({ type: 'close', id: this.id });
    this.onClose();
  }

  private wait(): void {
    const deadline = performance.now() + MASK_WAIT_LIMIT_MS;
    for (;;) {
      const version = Atomics.load(this.state, 0);
      if (version >= this.expected) return;
      const left = deadline - performance.now();
      if (left <= 0 || this.worker.dead) throw new Error('the grammar worker stopped answering');
      // In slices, to notice a worker that died meanwhile.
      Atomics.wait(this.state, 0, version, Math.min(left, 100));
    }
  }
}
