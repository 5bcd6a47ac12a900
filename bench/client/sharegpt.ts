// Reads a ShareGPT-style dataset: a JSON array of conversations, each
// `{"conversations": [{"from": "human", "value": "..."}, {"from": "gpt", "value": "..."}, ...]}`
// (or `messages` with role/content). The first human turn is the prompt; the reply after it gives
// the output length when none is fixed, as vLLM's and SGLang's serving benchmarks do.
import { readFileSync } from 'node:fs';

export interface DatasetEntry {
  prompt: string;
  /** The reference reply, when the conversation has one. */
  reply?: string;
}

export class DatasetError extends Error {
  override name = 'DatasetError';
}

type Turn = { from?: unknown; value?: unknown; role?: unknown; content?: unknown };

const HUMAN = new Set(['human', 'user']);
const ASSISTANT = new Set(['gpt', 'assistant', 'chatgpt', 'bard', 'model']);

function firstExchange(turns: Turn[]): DatasetEntry | undefined {
  const speaker = (t: Turn) => String(t.from ?? t.role ?? '').toLowerCase();
  const text = (t: Turn) => t.value ?? t.content;
  const i = turns.findIndex((t) => HUMAN.has(speaker(t)) && typeof text(t) === 'string' && (text(t) as string).trim() !== '');
  if (i < 0) return undefined;
  const next = turns[i + 1];
  const reply = next && ASSISTANT.has(speaker(next)) && typeof text(next) === 'string' ? (text(next) as string) : undefined;
  return { prompt: text(turns[i]) as string, reply };
}

/** Parses the dataset text; entries without a human turn are skipped. */
export function parseShareGpt(json: string, source = 'dataset'): DatasetEntry[] {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (err) {
    throw new DatasetError(`${source} is not valid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(data)) throw new DatasetError(`${source} must be a JSON array of conversations`);
  const entries: DatasetEntry[] = [];
  data.forEach((item, index) => {
    const turns = (item as { conversations?: unknown; messages?: unknown })?.conversations ?? (item as { messages?: unknown })?.messages;
    if (!Array.isArray(turns)) throw new DatasetError(`${source}[${index}].conversations must be a list of turns`);
    const exchange = firstExchange(turns as Turn[]);
    if (exchange) entries.push(exchange);
  });
  if (entries.length === 0) throw new DatasetError(`${source} has no conversation with a human turn`);
  return entries;
}

export function readShareGpt(path: string): DatasetEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DatasetError(`cannot read --dataset ${path}: ${(err as Error).message}`);
  }
  return parseShareGpt(text, path);
}
