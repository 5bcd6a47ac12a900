// Messages and shared memory between the engine and its grammar worker (grammar-worker.ts).
//
// Each matcher has a state buffer shared with the engine: Int32 words [version, status, mask...].
// The worker writes the bitmask of the tokens allowed next (bit i of word w: token 32·w + i), then
// the status, then increments the version and wakes waiters. The engine counts what it asked for
// (one version for the open, one per accepted token) and reads the mask once the version matches.
import type { StructuredOutput } from '../structured-output.ts';
import type { GrammarVocabulary } from './grammar-vocabulary.ts';

/** Words before the bitmask in a matcher's state buffer. */
export const STATE_HEADER = 2;

export enum Status {
  Running = 0,
  /** The grammar is complete and a stop token was accepted (or it needs none): the output ends. */
  Terminated = 1,
  /** The last token was not allowed (cannot happen while the mask is applied), or the matcher failed. */
  Failed = 2,
}

export interface WorkerSetup {
  vocabulary: GrammarVocabulary;
  /** Compiled grammars kept (least recently used go first). */
  cacheSize: number;
  /** One Int32 word: 1 while the worker compiles. */
  control: SharedArrayBuffer;
}

export type ToWorker =
  | { type: 'open'; id: number; key: string; spec: StructuredOutput; stopTokenIds: number[]; state: SharedArrayBuffer }
  | { type: 'accept'; id: number; tokenId: number }
  | { type: 'close'; id: number };

export type FromWorker =
  | { type: 'opened'; id: number }
  /** The spec did not compile (`reason` says why), or the worker cannot compile any more (`retry`). */
  | { type: 'failed'; id: number; reason: string; retry: boolean }
  /** A failure inside XGrammar left the instance unusable for compiling; its open matchers still work. */
  | { type: 'poisoned' };

/** Int32 words of a matcher's state buffer for a vocabulary of `vocabSize` tokens. */
export function stateWords(vocabSize: number): number {
  return STATE_HEADER + Math.ceil(vocabSize / 32);
}
