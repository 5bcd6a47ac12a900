// A Hugging Face model's sampling defaults, from its generation_config.json, as vLLM takes them
// (`--generation-config auto`, its default): temperature, top_p, top_k, min_p, repetition_penalty,
// and max_new_tokens as the default max_tokens. They replace the built-in defaults of the fields a
// request leaves unset. vLLM reads the file through transformers' `to_diff_dict()`, which drops
// values equal to transformers' own defaults; so do we (it matters for top_k: transformers' 50
// means "off" here, as in vLLM). A GGUF file has no generation_config: no defaults.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Sampling defaults a model brings; unset fields keep the built-in defaults (sampling-params.ts). */
export interface GenerationDefaults {
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repetitionPenalty?: number;
  /** max_new_tokens: the token budget of a request that gives none (within the context its prompt leaves). */
  maxTokens?: number;
}

export interface GenerationConfigReading {
  defaults: GenerationDefaults;
  /** Values that were ignored and why, for the server log. */
  warnings: string[];
}

interface Field {
  key: keyof GenerationDefaults;
  /** transformers' GenerationConfig default, which to_diff_dict() leaves out. */
  transformersDefault?: number;
  valid(v: number): boolean;
  range: string;
}

const MAX_INT32 = 2 ** 31 - 1;

/** The file's names → ours, with the ranges requests are held to (sampling-params.ts). */
const FIELDS: Record<string, Field> = {
  temperature: { key: 'temperature', transformersDefault: 1, valid: (v) => v >= 0 && v <= 2, range: 'a number in [0, 2]' },
  top_p: { key: 'topP', transformersDefault: 1, valid: (v) => v > 0 && v <= 1, range: 'a number in (0, 1]' },
  top_k: { key: 'topK', transformersDefault: 50, valid: (v) => Number.isSafeInteger(v) && v >= 0, range: 'a non-negative integer' },
  min_p: { key: 'minP', valid: (v) => v >= 0 && v <= 1, range: 'a number in [0, 1]' },
  repetition_penalty: {
    key: 'repetitionPenalty',
    transformersDefault: 1,
    valid: (v) => v > 0 && v <= 2,
    range: 'a number in (0, 2]',
  },
  max_new_tokens: {
    key: 'maxTokens',
    valid: (v) => Number.isSafeInteger(v) && v >= 1 && v <= MAX_INT32,
    range: `an integer in [1, ${MAX_INT32}]`,
  },
};

/** The sampling defaults in a parsed generation_config.json; `path` names it in warnings. */
export function generationDefaults(config: Record<string, unknown>, path: string): GenerationConfigReading {
  const defaults: GenerationDefaults = {};
  const warnings: string[] = [];
  for (const [name, field] of Object.entries(FIELDS)) {
    const value = config[name];
    if (value === undefined || value === null || value === field.transformersDefault) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || !field.valid(value)) {
      warnings.push(`${path}: ${name} ${JSON.stringify(value)} is ignored; it must be ${field.range}`);
      continue;
    }
    defaults[field.key] = value;
  }
  return { defaults, warnings };
}

/** The sampling defaults of a Hugging Face model directory; none when it has no generation_config.json. */
export async function readGenerationDefaults(dir: string): Promise<GenerationConfigReading> {
  const path = join(dir, 'generation_config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { defaults: {}, warnings: [] };
    throw new Error(`cannot read ${path}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${path} must hold a JSON object`);
  return generationDefaults(value as Record<string, unknown>, path);
}
