// The architectures this server runs, and finding the one a checkpoint needs. Adding a family is a
// module next to this file and a line in ARCHITECTURES.
import { UnsupportedModelError } from '../unsupported-model-error.ts';
import type { Architecture } from './architecture.ts';
import { gemma2 } from './gemma2.ts';
import { gemma3 } from './gemma3.ts';
import { llama } from './llama.ts';
import { mistral } from './mistral.ts';
import { phi3 } from './phi3.ts';
import { qwen2 } from './qwen2.ts';
import { qwen3 } from './qwen3.ts';

export const ARCHITECTURES: readonly Architecture[] = [llama, mistral, phi3, qwen2, qwen3, gemma2, gemma3];

/** The module for a config.json, by its `model_type` (its `architectures` classes only name it in the error). */
export function architectureForHf(raw: Record<string, unknown>): Architecture {
  const modelType = String(raw.model_type ?? '');
  const found = ARCHITECTURES.find((a) => a.hfModelTypes.includes(modelType));
  if (found) return found;
  const classes = Array.isArray(raw.architectures) ? ` (${raw.architectures.join(', ')})` : '';
  const supported = ARCHITECTURES.flatMap((a) => a.hfModelTypes);
  throw new UnsupportedModelError(`unsupported architecture "${modelType}"${classes}; supported: ${supported.join(', ')}`);
}

/** The module for a GGUF header, by its `general.architecture`. */
export function architectureForGguf(meta: Record<string, unknown>): Architecture {
  const name = String(meta['general.architecture'] ?? '');
  const found = ARCHITECTURES.find((a) => a.ggufArchitectures.includes(name));
  if (found) return found;
  const supported = ARCHITECTURES.flatMap((a) => a.ggufArchitectures);
  throw new UnsupportedModelError(`unsupported GGUF architecture "${name}"; supported: ${supported.join(', ')}`);
}

/** The module that read a ModelConfig, by its `architecture`. */
export function architectureNamed(name: string): Architecture {
  const found = ARCHITECTURES.find((a) => a.name === name);
  if (!found) throw new UnsupportedModelError(`unknown architecture "${name}"`);
  return found;
}
