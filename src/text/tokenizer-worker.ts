// A worker thread that tokenizes long texts for the server (tokenizer-pool.ts), loading the same
// model's tokenizer itself.
import { parentPort, workerData } from 'node:worker_threads';
import type { ModelLocation } from '../engine/engine-protocol.ts';
import { loadTokenizer } from './load-tokenizer.ts';

export interface EncodeJob {
  id: number;
  text: string;
  addSpecialTokens: boolean;
}

export type EncodeResult = { id: number; tokenIds: number[] } | { id: number; error: string };

const tokenizer = loadTokenizer(workerData as ModelLocation);
parentPort?.on('message', (job: EncodeJob) => {
  tokenizer.then(
    (t) =>
      parentPort?.postMessage({
        id: job.id,
        tokenIds: t.encode(job.text, { addSpecialTokens: job.addSpecialTokens }),
      } satisfies EncodeResult),
    (e: Error) => parentPort?.postMessage({ id: job.id, error: e.message } satisfies EncodeResult),
  );
});
