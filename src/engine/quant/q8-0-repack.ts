// Q5_0 and IQ4_NL blocks rewritten as Q8_0 blocks, which the native kernels and the MLX repacking
// run, instead of f32 (3.6x less memory). All three are 32 values times one f16 scale d, and ggml
// decodes each value as d times a small integer in f32: Q5_0 d·(q − 16) with q in 0..31, IQ4_NL
// d·level with an int8 level, Q8_0 d·q with q an int8. So a Q8_0 block with the same d and q − 16
// (or the level) decodes to the same f32 bits as the original block.
import { IQ4_NL_LEVELS } from './legacy-quants.ts';

const QK = 32;
/** Q8_0 (34 bytes): d f16, qs int8[32]; value = d·q. */
const Q8_0_BYTES = 34;

function blocksOf(src: Uint8Array, blockBytes: number, name: string): number {
  if (src.byteLength % blockBytes !== 0) throw new RangeError(`${name}: ${src.byteLength} bytes is not a whole number of blocks`);
  return src.byteLength / blockBytes;
}

/** Q5_0 (22 bytes: d f16, qh u32 of high bits, qs[16] of low nibbles) → Q8_0 with q − 16. */
export function q5_0ToQ8_0(src: Uint8Array): Uint8Array {
  const blocks = blocksOf(src, 22, 'Q5_0');
  const dst = new Uint8Array(blocks * Q8_0_BYTES);
  for (let i = 0; i < blocks; i++) {
    const at = i * 22;
    const out = i * Q8_0_BYTES;
    dst[out] = src[at];
    dst[out + 1] = src[at + 1];
    const qh = (src[at + 2] | (src[at + 3] << 8) | (src[at + 4] << 16) | (src[at + 5] << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const q = src[at + 6 + j];
      // Bit j of qh is value j's fifth bit, bit j + 16 value (j + 16)'s; int8 as its byte.
      dst[out + 2 + j] = ((q & 0x0f) | (((qh >>> j) << 4) & 0x10)) - 16;
      dst[out + 2 + j + 16] = ((q >> 4) | ((qh >>> (j + 12)) & 0x10)) - 16;
    }
  }
  return dst;
}

/** IQ4_NL (18 bytes: d f16, qs[16] of 4-bit level indices) → Q8_0 holding the levels. */
export function iq4nlToQ8_0(src: Uint8Array): Uint8Array {
  const blocks = blocksOf(src, 18, 'IQ4_NL');
  const dst = new Uint8Array(blocks * Q8_0_BYTES);
  for (let i = 0; i < blocks; i++) {
    const at = i * 18;
    const out = i * Q8_0_BYTES;
    dst[out] = src[at];
    dst[out + 1] = src[at + 1];
    for (let j = 0; j < QK / 2; j++) {
      const q = src[at + 2 + j];
      dst[out + 2 + j] = IQ4_NL_LEVELS[q & 0x0f];
      dst[out + 2 + j + 16] = IQ4_NL_LEVELS[q >> 4];
    }
  }
  return dst;
}

/** The repacks by ggml type number (Q5_0 = 6, IQ4_NL = 20). */
export const Q8_0_REPACKS: ReadonlyMap<number, (src: Uint8Array) => Uint8Array> = new Map([
  [6, q5_0ToQ8_0],
  [20, iq4nlToQ8_0],
]);
