// Decides what kind of thing a --model value names. Pure: the caller says whether the path
// exists, so the rules can be tested without a file system.
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { ModelSourceError } from './errors.ts';

export type ModelSpec =
  | { kind: 'default' }
  | { kind: 'path'; path: string }
  /** `quant` is the `:QUANT` suffix that picks one of a GGUF repo's files (see gguf-choice.ts). */
  | { kind: 'hub'; repoId: string; quant?: string };

// Hugging Face's own rule for repo names: word characters, '-' and '.', no '--' or '..',
// not starting or ending with '-' or '.', at most 96 characters; the owner likewise.
const HUB_NAME = /^(?![-.])(?!.*(?:--|\.\.))[\w.-]{1,96}(?<![-.])$/;

export function isPlausibleHubRepoId(spec: string): boolean {
  const parts = spec.split('/');
  return parts.length === 2 && parts.every((part) => HUB_NAME.test(part));
}

// The `:QUANT` of `org/repo:QUANT`, as llama.cpp's -hf takes it: Q4_K_M, q8_0, UD-Q4_K_XL, IQ2_XXS, F16.
const QUANT_TAG = /^[\w.-]{1,64}$/;

/** Things that can only mean a path: absolute, ./ ../ ~/ prefixes, or a GGUF file name. */
function looksLikePath(spec: string): boolean {
  return /^(?:\/|\.{1,2}(?:\/|\\|$)|~(?:\/|$)|[A-Za-z]:[\\/])/.test(spec) || /\.gguf$/i.test(spec);
}

export function expandHome(spec: string): string {
  if (spec === '~') return homedir();
  if (spec.startsWith('~/')) return resolve(homedir(), spec.slice(2));
  return spec;
}

/**
 * Classifies a --model value. `pathExists` is whether `expandHome(spec)` exists on disk: an
 * existing path always wins, so a local directory named like `org/model` is used as is.
 */
export function classifyModelSpec(spec: string | undefined, defaultAliases: readonly string[], pathExists: boolean): ModelSpec {
  if (spec === undefined) return { kind: 'default' };
  if (typeof spec !== 'string') {
    throw new ModelSourceError('invalid_spec', `model must be a string, got ${typeof spec}`);
  }
  if (spec.trim() === '') return { kind: 'default' };
  if (pathExists) return { kind: 'path', path: resolve(expandHome(spec)) };
  if (defaultAliases.includes(spec)) return { kind: 'default' };
  if (looksLikePath(spec)) {
    throw new ModelSourceError('not_found', `model: no file or directory at ${resolve(expandHome(spec))}`);
  }
  if (isPlausibleHubRepoId(spec)) return { kind: 'hub', repoId: spec };
  const colon = spec.lastIndexOf(':');
  if (colon > 0 && isPlausibleHubRepoId(spec.slice(0, colon)) && QUANT_TAG.test(spec.slice(colon + 1))) {
    return { kind: 'hub', repoId: spec.slice(0, colon), quant: spec.slice(colon + 1) };
  }
  throw new ModelSourceError(
    'invalid_spec',
    `model: "${spec}" is not an existing path, a Hugging Face repo id (owner/name, or owner/name:QUANT for one of ` +
      `a GGUF repo's files) or a known alias (${defaultAliases.join(', ')})`,
  );
}
