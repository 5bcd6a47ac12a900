// Token log probabilities in the two shapes OpenAI's API uses: the chat shape (one entry per
// token with its bytes and top alternatives) and the legacy completions shape (parallel arrays
// plus a token → logprob map per step and character offsets into the text).
import type { TokenLogprob, TopLogprob } from '../gen/mlxserve/v1/generation_pb.ts';

/** A log probability JSON can carry: -Infinity would serialize as null, so clamp as vLLM does. */
const MIN_LOGPROB = -9999;
const clampLogprob = (lp: number) => (Number.isFinite(lp) ? Math.max(lp, MIN_LOGPROB) : MIN_LOGPROB);

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

const ESCAPED_BYTES = /^bytes:((?:\\x[0-9a-fA-F]{2})+)$/;

/**
 * The token's exact bytes: token_bytes when the service sends them, else recovered from its text
 * (which spells a partial UTF-8 character as "bytes:\xe2\x80").
 */
export function tokenBytes(t: { token: string; tokenBytes: Uint8Array }): Uint8Array {
  if (t.tokenBytes.length > 0) return t.tokenBytes;
  const escaped = ESCAPED_BYTES.exec(t.token);
  if (escaped) return Uint8Array.from(escaped[1].slice(2).split('\\x'), (h) => parseInt(h, 16));
  return new TextEncoder().encode(t.token);
}

/**
 * The token as text. A token that is only part of a multi-byte character cannot be shown as text;
 * OpenAI then writes its bytes as "bytes:\xe2\x80", which is what clients expect to see.
 */
export function tokenText(t: { token: string; tokenBytes: Uint8Array }): string {
  const bytes = tokenBytes(t);
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return `bytes:${Array.from(bytes, (b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}`;
  }
}

export interface ChatTopLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

export interface ChatTokenLogprob extends ChatTopLogprob {
  top_logprobs: ChatTopLogprob[];
}

function chatTop(t: TopLogprob | TokenLogprob): ChatTopLogprob {
  return { token: tokenText(t), logprob: clampLogprob(t.logprob), bytes: Array.from(tokenBytes(t)) };
}

/** The `content` entries of a chat choice's `logprobs`. */
export function chatLogprobs(entries: TokenLogprob[]): ChatTokenLogprob[] {
  return entries.map((e) => ({ ...chatTop(e), top_logprobs: e.topLogprobs.map(chatTop) }));
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

/** Length in characters as OpenAI counts them (code points), for text_offset. */
export const charLength = (s: string) => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/**
 * Where the next token of a choice starts in its text, in characters. Tokens are decoded as a
 * byte stream, so a character split over several tokens counts once, at the token completing it.
 */
export class TextCursor {
  private readonly decoder = new TextDecoder('utf-8');

  constructor(public chars = 0) {}

  advance(bytes: Uint8Array): void {
    this.chars += charLength(this.decoder.decode(bytes, { stream: true }));
  }
}

/** The completions-shape logprobs of some tokens of a choice, moving its cursor past them. */
export function completionLogprobs(entries: TokenLogprob[], cursor: TextCursor): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  for (const e of entries) {
    const text = tokenText(e);
    out.tokens.push(text);
    out.token_logprobs.push(clampLogprob(e.logprob));
    // As vLLM does: the step's top alternatives, and the sampled token among them.
    const top: Record<string, number> = {};
    for (const t of e.topLogprobs) top[tokenText(t)] ??= clampLogprob(t.logprob);
    top[text] ??= clampLogprob(e.logprob);
    out.top_logprobs.push(top);
    out.text_offset.push(cursor.chars);
    cursor.advance(tokenBytes(e));
  }
  return out;
}
