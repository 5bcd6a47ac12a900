// Tokenizes long texts on a worker thread (tokenizer-worker.ts), so that a megabyte prompt never
// stalls the server's event loop, and with it every stream the server is delivering. Short texts
// are tokenized in place: a round trip to the worker costs more than they do.
import { Worker } from 'node:worker_threads';
import type { ModelLocation } from '../engine/engine-protocol.ts';
import type { Tokenizer } from './tokenizer.ts';
import type { EncodeJob, EncodeResult } from './tokenizer-worker.ts';
import { siblingModule } from '../util/sibling-module.ts';

/** Texts at least this long (characters) go to the worker. */
export const WORKER_MIN_CHARS = 16_384;

export class TokenizerPool {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (ids: number[]) => void; reject: (e: Error) => void }>();

  constructor(
    readonly tokenizer: Tokenizer,
    private readonly location: ModelLocation,
    private readonly minChars = WORKER_MIN_CHARS,
  ) {}

  encode(text: string, opts: { addSpecialTokens: boolean }): Promise<number[]> {
    if (text.length < this.minChars) return Promise.resolve(this.tokenizer.encode(text, opts));
    const id = this.nextId++;
    return new Promise<number[]>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ensureWorker().postMessage({ id, text, addSpecialTokens: opts.addSpecialTokens } satisfies EncodeJob);
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(siblingModule(import.meta.url, 'tokenizer-worker'), { workerData: this.location });
    worker.on('message', (r: EncodeResult) => {
      const job = this.pending.get(r.id);
      if (!job) return;
      this.pending.delete(r.id);
      if ('error' in r) job.reject(new Error(r.error));
      else job.resolve(r.tokenIds);
    });
    const fail = (e: Error) => {
      for (const job of this.pending.values()) job.reject(e);
      this.pending.clear();
      if (this.worker === worker) this.worker = undefined;
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the tokenizer worker exited (code ${code})`)));
    // An idle worker must not keep the process alive.
    worker.unref();
    this.worker = worker;
    return worker;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
