// Which GGUF file of a hub repo `--model org/repo:QUANT` means, after llama.cpp's
// `-hf org/repo[:quant]`. Pure: it decides over a list of repo paths.
//
// The rule:
// - Candidates are the repo's *.gguf files (in any folder) that hold a model: not a vision
//   projector (mmproj), an importance matrix (imatrix) or a draft/speculative head (mtp-, eagle3-).
//   A model split into parts (`…-00001-of-00003.gguf`) counts once.
// - With `:QUANT`, the candidate whose path contains QUANT, case-insensitively. When several do,
//   the one whose quant label (the last `-` or `.` separated part of its name, e.g. Q4_K_M) is
//   exactly QUANT; still several, or none, is an error that lists what the repo has.
// - Without it, the Q4_K_M candidate when there is one, else the first in path order.
import { ModelSourceError } from './errors.ts';

const NOT_A_MODEL = ['mmproj', 'imatrix', 'mtp-', 'eagle3-'];
const SPLIT_PART = /^(.+)-(\d{5})-of-(\d{5})$/i;
const LABEL = /[-.]([A-Z0-9_]+)$/i;

/** What llama.cpp (and the hub's own "use this model" snippets) pick when no quant is named. */
export const DEFAULT_GGUF_QUANT = 'Q4_K_M';

export interface GgufCandidate {
  /** The file to load (the first part of a split model). */
  path: string;
  /** Upper-cased quant label, e.g. "Q4_K_M"; "" when the name has none. */
  quant: string;
  /** How many files the model is split into (1: a single file). */
  parts: number;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function splitInfo(path: string): { stem: string; part: number; parts: number } {
  const stem = path.replace(/\.gguf$/i, '');
  const split = SPLIT_PART.exec(stem);
  return split ? { stem: split[1], part: Number(split[2]), parts: Number(split[3]) } : { stem, part: 1, parts: 1 };
}

/** The quant label of a GGUF file name: `Model-Q4_K_M.gguf` → `Q4_K_M`; "" when there is none. */
export function ggufQuantLabel(path: string): string {
  return LABEL.exec(splitInfo(baseName(path)).stem)?.[1].toUpperCase() ?? '';
}

/** The model GGUF files among `paths`, one per split model, in path order. */
export function ggufCandidates(paths: readonly string[]): GgufCandidate[] {
  return paths
    .filter((path) => /\.gguf$/i.test(path))
    .filter((path) => !NOT_A_MODEL.some((word) => baseName(path).toLowerCase().includes(word)))
    .filter((path) => splitInfo(path).part === 1)
    .sort()
    .map((path) => ({ path, quant: ggufQuantLabel(path), parts: splitInfo(path).parts }));
}

function matching(candidates: GgufCandidate[], quant: string): GgufCandidate[] {
  const wanted = quant.toLowerCase();
  const containing = candidates.filter((c) => c.path.toLowerCase().includes(wanted));
  if (containing.length <= 1) return containing;
  const exact = containing.filter((c) => c.quant === quant.toUpperCase());
  return exact.length > 0 ? exact : containing;
}

/** "Q4_K_M (Model-Q4_K_M.gguf), Q8_0 (Model-Q8_0.gguf)" */
export function describeGgufs(candidates: readonly GgufCandidate[]): string {
  return candidates.map((c) => (c.quant ? `${c.quant} (${c.path})` : c.path)).join(', ');
}

/**
 * The GGUF file `repoId[:quant]` names among the repo's `paths`; undefined when no quant was
 * asked for and the repo has no model GGUF at all. Throws `invalid_spec` when the quant matches
 * no file or several, and `invalid_model` for a split model (which the loader cannot read).
 */
export function chooseGgufFile(repoId: string, paths: readonly string[], quant?: string): string | undefined {
  const candidates = ggufCandidates(paths);
  let chosen: GgufCandidate | undefined;
  if (quant !== undefined) {
    const found = matching(candidates, quant);
    if (found.length !== 1) {
      const available = candidates.length > 0 ? `; available: ${describeGgufs(candidates)}` : '; it has no GGUF files';
      const problem =
        found.length === 0
          ? `no GGUF file of "${repoId}" matches quant "${quant}"`
          : `quant "${quant}" matches several GGUF files of "${repoId}"`;
      throw new ModelSourceError('invalid_spec', `model: ${problem}${available}. Name one as ${repoId}:<quant>`);
    }
    chosen = found[0];
  } else {
    chosen = matching(candidates, DEFAULT_GGUF_QUANT)[0] ?? candidates[0];
  }
  if (chosen && chosen.parts > 1) {
    const single = candidates.filter((c) => c.parts === 1);
    throw new ModelSourceError(
      'invalid_model',
      `model: ${chosen.path} of "${repoId}" is split into ${chosen.parts} files, which this server cannot load` +
        (single.length > 0 ? `; single-file quants: ${describeGgufs(single)}` : ''),
    );
  }
  return chosen?.path;
}
