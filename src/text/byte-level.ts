// GPT-2's byte-level alphabet: every byte 0-255 is spelled as one printable Unicode character so a
// byte-level BPE vocabulary can be stored as strings. Printable Latin-1 bytes stand for themselves;
// the rest (controls, space, 0x7F-0xA0, 0xAD) map to U+0100 onwards in byte order.

function buildByteToChar(): string[] {
  const chars: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars[b] = String.fromCharCode(printable ? b : next++);
  }
  return chars;
}

export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** True when every character of `token` is a byte-level character (i.e. it is spelled in the alphabet). */
export function isByteLevelSpelling(token: string): boolean {
  for (const c of token) if (!CHAR_TO_BYTE.has(c)) return false;
  return true;
}

/** The bytes a byte-level token stands for. Characters outside the alphabet count as their UTF-8. */
export function byteLevelTokenBytes(token: string): Uint8Array {
  const out: number[] = [];
  for (const c of token) {
    const b = CHAR_TO_BYTE.get(c);
    if (b !== undefined) out.push(b);
    else out.push(...new TextEncoder().encode(c));
  }
  return Uint8Array.from(out);
}

/** Spells raw UTF-8 text in the byte-level alphabet. */
export function toByteLevelSpelling(text: string): string {
  let out = '';
  for (const b of new TextEncoder().encode(text)) out += BYTE_TO_CHAR[b];
  return out;
}
