// Faster stand-ins for @huggingface/tokenizers' pre-tokenization, with the same results.
// 1. Byte-level vocabularies: a sequence of regex splits (Split "Isolated", Digits) ending in
//    ByteLevel. The library's version re-flattens arrays at every step and byte-encodes each piece
//    through TextEncoder and an object lookup, which made pre-tokenization ~90% of encoding time
//    (about 20 ms per 1,000 tokens). The split regexes are compiled by the library itself; the
//    byte-level step and GPT-2's regex follow the Rust `tokenizers` semantics.
// 2. Vocabularies without a pre-tokenizer (SentencePiece): the whole prompt is one BPE word, which
//    the library merges in time that grows badly with length (~1 s for 10k tokens). Splitting it
//    where no merge can ever apply gives the same tokens in word-sized pieces.
import * as hfTokenizers from '@huggingface/tokenizers';
import { BYTE_TO_CHAR } from './byte-level.ts';

// The package's type declarations use extensionless re-exports that NodeNext resolution skips, so
// these two runtime exports are typed here.
interface PreTokenizerInstance {
  pre_tokenize_text(text: string, options?: unknown): string[];
}
const { PreTokenizer, SplitPreTokenizer } = hfTokenizers as unknown as {
  /** Base class of the library's pre-tokenizers (instances are callable). */
  PreTokenizer: abstract new () => PreTokenizerInstance;
  /** Compiles a tokenizer.json Split pattern (Oniguruma syntax) to a JavaScript RegExp. */
  SplitPreTokenizer: new (
    config: unknown,
  ) => { pattern: RegExp | null };
};

/** GPT-2's split regex as HF ByteLevel(use_regex) applies it, with Unicode whitespace for \s as in Rust. */
const GPT2_REGEX =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

const ASCII_SPELLING: readonly string[] = BYTE_TO_CHAR.slice(0, 128);
const utf8 = new TextEncoder();

function byteLevelSpelling(piece: string): string {
  let out = '';
  for (let i = 0; i < piece.length; i++) {
    const code = piece.charCodeAt(i);
    if (code >= 128) {
      // Rare enough in LLM text to take the general path for the whole piece.
      out = '';
      for (const b of utf8.encode(piece)) out += BYTE_TO_CHAR[b];
      return out;
    }
    out += ASCII_SPELLING[code];
  }
  return out;
}

/** Keeps matches and the text between them (HF's "Isolated" split behaviour). */
function splitIsolated(text: string, regex: RegExp, out: string[]): void {
  let prev = 0;
  regex.lastIndex = 0;
  for (const match of text.matchAll(regex)) {
    const start = match.index!;
    const m = match[0];
    if (m.length === 0) continue;
    if (start > prev) out.push(text.slice(prev, start));
    out.push(m);
    prev = start + m.length;
  }
  if (prev < text.length) out.push(text.slice(prev));
}

export class RegexByteLevelPreTokenizer extends PreTokenizer {
  constructor(
    private readonly regexes: RegExp[],
    private readonly byteLevel: boolean,
  ) {
    super();
  }

  override pre_tokenize_text(text: string): string[] {
    let pieces = [text];
    for (const regex of this.regexes) {
      const next: string[] = [];
      for (const piece of pieces) splitIsolated(piece, regex, next);
      pieces = next;
    }
    return this.byteLevel ? pieces.map(byteLevelSpelling) : pieces;
  }
}

type Step = RegExp | 'byte-level';

function stepsOf(config: unknown): Step[] | undefined {
  if (!config || typeof config !== 'object') return undefined;
  const c = config as Record<string, unknown>;
  switch (c.type) {
    case 'Sequence': {
      if (!Array.isArray(c.pretokenizers)) return undefined;
      const steps: Step[] = [];
      for (const inner of c.pretokenizers) {
        const s = stepsOf(inner);
        if (!s) return undefined;
        steps.push(...s);
      }
      return steps;
    }
    case 'Split': {
      if (c.behavior !== 'Isolated' || c.invert !== false) return undefined;
      const pattern = new SplitPreTokenizer({ ...c, invert: false }).pattern;
      return pattern ? [pattern] : undefined;
    }
    case 'Digits':
      // Rust's Digits splits on char::is_numeric, i.e. any \p{N}.
      return [c.individual_digits === true ? /\p{N}/gu : /\p{N}+/gu];
    case 'ByteLevel':
      if (c.add_prefix_space === true) return undefined;
      return c.use_regex === false ? ['byte-level'] : [GPT2_REGEX, 'byte-level'];
    default:
      return undefined;
  }
}

/**
 * The fast pre-tokenizer for a tokenizer.json `pre_tokenizer`, or undefined when the configuration
 * is not a chain of regex splits ending (optionally) in one ByteLevel step.
 */
export function fastPreTokenizerFor(config: unknown): RegexByteLevelPreTokenizer | undefined {
  const steps = stepsOf(config);
  if (!steps || steps.length === 0) return undefined;
  const byteLevelAt = steps.indexOf('byte-level');
  if (byteLevelAt !== -1 && byteLevelAt !== steps.length - 1) return undefined;
  const regexes = steps.filter((s): s is RegExp => s !== 'byte-level');
  return new RegexByteLevelPreTokenizer(regexes, byteLevelAt !== -1);
}

/**
 * Splits text between two characters that are never adjacent inside any token. A BPE merge joins
 * two adjacent symbols into a token that contains their boundary characters side by side, so no
 * merge can ever cross such a point: splitting there first gives the same tokens, in small pieces.
 */
export class NeverMergedBoundarySplitter extends PreTokenizer {
  constructor(private readonly adjacentPairs: ReadonlySet<string>) {
    super();
  }

  override pre_tokenize_text(text: string): string[] {
    const pieces: string[] = [];
    let start = 0;
    let prev = '';
    for (let i = 0; i < text.length; ) {
      const code = text.codePointAt(i)!;
      const width = code > 0xffff ? 2 : 1;
      const ch = text.slice(i, i + width);
      if (i > 0 && !this.adjacentPairs.has(prev + ch)) {
        pieces.push(text.slice(start, i));
        start = i;
      }
      prev = ch;
      i += width;
    }
    if (start < text.length) pieces.push(text.slice(start));
    return pieces;
  }
}

/** Every pair of characters that appear side by side in some piece. */
export function adjacentCharacterPairs(pieces: Iterable<string | undefined>): Set<string> {
  const pairs = new Set<string>();
  for (const piece of pieces) {
    if (piece === undefined) continue;
    let prev = '';
    for (const ch of piece) {
      if (prev) pairs.add(prev + ch);
      prev = ch;
    }
  }
  return pairs;
}
