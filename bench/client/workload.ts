// The requests a run sends: the built-in synthetic set or a ShareGPT dataset, sized with the
// model's tokenizer. Deterministic for a given seed.
import { fitPrompt } from './prompt-fitting.ts';
import { countPromptTokens, type PromptBody, type PromptTokenizer } from './prompt-tokenizer.ts';
import { seededRng, shuffled } from './rng.ts';
import { DatasetError, type DatasetEntry } from './sharegpt.ts';
import { syntheticTask, syntheticText } from './synthetic-prompts.ts';

export interface BenchRequest {
  body: PromptBody;
  /** Prompt tokens by the client's tokenizer (the server's usage is recorded separately). */
  promptTokens: number;
  maxTokens: number;
}

export interface WorkloadSpec {
  format: PromptBody['kind'];
  /** Exact prompt length (synthetic: default 128; dataset: prompts are cut to it, shorter ones skipped). */
  promptTokens?: number;
  /** Exact output length (synthetic: default 128; dataset: default the reference reply's length). */
  maxTokens?: number;
  /** ShareGPT entries; undefined for the synthetic set. */
  dataset?: DatasetEntry[];
  seed: number;
}

export const DEFAULT_PROMPT_TOKENS = 128;
export const DEFAULT_MAX_TOKENS = 128;
/** Dataset limits as in vLLM's ShareGPT sampling: very short or very long conversations are left out. */
const DATASET_MIN_TOKENS = 4;
const DATASET_MAX_PROMPT_TOKENS = 1024;
const DATASET_MAX_OUTPUT_TOKENS = 1024;

function synthetic(tok: PromptTokenizer, spec: WorkloadSpec, count: number, salt: number): BenchRequest[] {
  const rng = seededRng(spec.seed * 7919 + salt);
  const target = spec.promptTokens ?? DEFAULT_PROMPT_TOKENS;
  const maxTokens = spec.maxTokens ?? DEFAULT_MAX_TOKENS;
  return Array.from({ length: count }, () => {
    const fitted = fitPrompt(tok, spec.format, `${syntheticTask(rng)}\n\n`, syntheticText(rng, target * 2 + 32), target);
    return { ...fitted, maxTokens };
  });
}

function fromDataset(tok: PromptTokenizer, spec: WorkloadSpec, entries: DatasetEntry[], count: number, salt: number): BenchRequest[] {
  const rng = seededRng(spec.seed * 7919 + salt);
  const out: BenchRequest[] = [];
  for (const e of shuffled(rng, entries)) {
    if (out.length === count) break;
    let maxTokens = spec.maxTokens;
    if (maxTokens === undefined) {
      if (e.reply === undefined) continue;
      maxTokens = tok.encode(e.reply, { addSpecialTokens: false }).length;
      if (maxTokens < DATASET_MIN_TOKENS || maxTokens > DATASET_MAX_OUTPUT_TOKENS) continue;
    }
    if (spec.promptTokens !== undefined) {
      try {
        out.push({ ...fitPrompt(tok, spec.format, '', e.prompt, spec.promptTokens), maxTokens });
      } catch {
        // Too short to cut to the fixed length: left out, as the fixed length asks.
      }
      continue;
    }
    const body: PromptBody =
      spec.format === 'chat' ? { kind: 'chat', messages: [{ role: 'user', content: e.prompt }] } : { kind: 'text', text: e.prompt };
    const promptTokens = countPromptTokens(tok, body);
    if (promptTokens < DATASET_MIN_TOKENS || promptTokens > DATASET_MAX_PROMPT_TOKENS) continue;
    out.push({ body, promptTokens, maxTokens });
  }
  if (out.length < count) {
    throw new DatasetError(
      `--dataset has only ${out.length} usable conversations for ${count} requests (prompt/output length limits apply)`,
    );
  }
  return out;
}

/**
 * `count` requests. `salt` separates independent draws of the same workload (the warm-up and each
 * concurrency level get their own prompts, so none is served from a cache filled by another).
 */
export function buildWorkload(tok: PromptTokenizer, spec: WorkloadSpec, count: number, salt = 0): BenchRequest[] {
  return spec.dataset ? fromDataset(tok, spec, spec.dataset, count, salt) : synthetic(tok, spec, count, salt);
}
