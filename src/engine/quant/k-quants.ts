// ggml's K-quant formats (super-blocks of 256 values with 16 or 8 sub-block scales): Q2_K, Q3_K,
// Q4_K, Q5_K, Q6_K. Each decodes `dst.length / 256` super-blocks from `src` into `dst` as
// ggml-quants.c's dequantize_row_* does, with the same float operations in the same order, so the
// values are bit-identical. Sub-block scales are (f16 scale)·(small integer), exact in f32;
// Math.fround marks each f32 intermediate ggml keeps, and a Float32Array store rounds the last
// operation once, as f32 arithmetic would (a double result of one operation on f32 values rounds
// to the same f32).
import { halfTable } from './f16.ts';

const QK_K = 256;

/**
 * Q2_K (84 bytes): scales[16] (low nibble: scale, high nibble: min), qs[64] of 2-bit values,
 * d f16, dmin f16; value = d·scale·q − dmin·min.
 */
export function dequantizeQ2_K(src: Uint8Array, dst: Float32Array): void {
  const half = halfTable();
  const blocks = dst.length / QK_K;
  for (let i = 0; i < blocks; i++) {
    const at = i * 84;
    const d = half[src[at + 80] | (src[at + 81] << 8)];
    const min = half[src[at + 82] | (src[at + 83] << 8)];
    let y = i * QK_K;
    let is = 0;
    for (let n = 0; n < QK_K; n += 128) {
      const q = at + 16 + n / 4;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half16 = 0; half16 < 32; half16 += 16) {
          const sc = src[at + is++];
          const dl = Math.fround(d * (sc & 0x0f));
          const ml = Math.fround(min * (sc >> 4));
          for (let l = 0; l < 16; l++) dst[y++] = dl * ((src[q + half16 + l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

/** Q3_K's 6-bit scale j (0..15) from its 12 packed bytes at `at`, as a signed value (−32..31). */
function q3kScale(src: Uint8Array, at: number, j: number): number {
  const low = j < 8 ? src[at + j] & 0x0f : src[at + j - 8] >> 4;
  const high = (src[at + 8 + (j & 3)] >> (2 * (j >> 2))) & 3;
  return (low | (high << 4)) - 32;
}

/**
 * Q3_K (110 bytes): hmask[32] (high bits, inverted: a clear bit subtracts 4), qs[64] of 2-bit
 * values, scales[12] (sixteen 6-bit scales), d f16; value = d·(scale − 32)·(q − 4·!h).
 */
export function dequantizeQ3_K(src: Uint8Array, dst: Float32Array): void {
  const half = halfTable();
  const blocks = dst.length / QK_K;
  for (let i = 0; i < blocks; i++) {
    const at = i * 110;
    const dAll = half[src[at + 108] | (src[at + 109] << 8)];
    let y = i * QK_K;
    let is = 0;
    let m = 1;
    for (let n = 0; n < QK_K; n += 128) {
      const q = at + 32 + n / 4;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half16 = 0; half16 < 32; half16 += 16) {
          const dl = Math.fround(dAll * q3kScale(src, at + 96, is++));
          for (let l = 0; l < 16; l++) {
            const hm = src[at + half16 + l] & m ? 0 : 4;
            dst[y++] = dl * (((src[q + half16 + l] >> shift) & 3) - hm);
          }
        }
        m <<= 1;
      }
    }
  }
}

/**
 * The 6-bit scale and min of sub-block j (0..7) of Q4_K/Q5_K's 12 packed bytes at `at`
 * (ggml's get_scale_min_k4); returns scale | min << 8.
 */
function scaleMinK4(src: Uint8Array, at: number, j: number): number {
  if (j < 4) return (src[at + j] & 63) | ((src[at + j + 4] & 63) << 8);
  const sc = (src[at + j + 4] & 0x0f) | ((src[at + j - 4] >> 6) << 4);
  const m = (src[at + j + 4] >> 4) | ((src[at + j] >> 6) << 4);
  return sc | (m << 8);
}

/**
 * Q4_K (144 bytes): d f16, dmin f16, scales[12] (eight 6-bit scales and mins), qs[128]: bytes
 * 32k..32k+31 hold sub-block 2k in their low nibbles and 2k+1 in their high nibbles;
 * value = d·scale·q − dmin·min.
 */
export function dequantizeQ4_K(src: Uint8Array, dst: Float32Array): void {
  const half = halfTable();
  const blocks = dst.length / QK_K;
  for (let i = 0; i < blocks; i++) {
    const at = i * 144;
    const d = half[src[at] | (src[at + 1] << 8)];
    const min = half[src[at + 2] | (src[at + 3] << 8)];
    let y = i * QK_K;
    for (let j = 0; j < 8; j += 2) {
      const q = at + 16 + j * 16;
      const a = scaleMinK4(src, at + 4, j);
      const b = scaleMinK4(src, at + 4, j + 1);
      const d1 = Math.fround(d * (a & 0xff));
      const m1 = Math.fround(min * (a >> 8));
      const d2 = Math.fround(d * (b & 0xff));
      const m2 = Math.fround(min * (b >> 8));
      for (let l = 0; l < 32; l++) dst[y++] = d1 * (src[q + l] & 0x0f) - m1;
      for (let l = 0; l < 32; l++) dst[y++] = d2 * (src[q + l] >> 4) - m2;
    }
  }
}

/**
 * Q5_K (176 bytes): as Q4_K with qh[32] before qs[128]: bit 2k of qh[l] is the fifth bit of value
 * l of sub-block 2k, bit 2k+1 that of sub-block 2k+1; value = d·scale·q − dmin·min.
 */
export function dequantizeQ5_K(src: Uint8Array, dst: Float32Array): void {
  const half = halfTable();
  const blocks = dst.length / QK_K;
  for (let i = 0; i < blocks; i++) {
    const at = i * 176;
    const d = half[src[at] | (src[at + 1] << 8)];
    const min = half[src[at + 2] | (src[at + 3] << 8)];
    const qh = at + 16;
    let y = i * QK_K;
    for (let j = 0; j < 8; j += 2) {
      const ql = at + 48 + j * 16;
      const a = scaleMinK4(src, at + 4, j);
      const b = scaleMinK4(src, at + 4, j + 1);
      const d1 = Math.fround(d * (a & 0xff));
      const m1 = Math.fround(min * (a >> 8));
      const d2 = Math.fround(d * (b & 0xff));
      const m2 = Math.fround(min * (b >> 8));
      const u1 = 1 << j;
      const u2 = 2 << j;
      for (let l = 0; l < 32; l++) dst[y++] = d1 * ((src[ql + l] & 0x0f) + (src[qh + l] & u1 ? 16 : 0)) - m1;
      for (let l = 0; l < 32; l++) dst[y++] = d2 * ((src[ql + l] >> 4) + (src[qh + l] & u2 ? 16 : 0)) - m2;
    }
  }
}

/**
 * Q6_K (210 bytes): ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] int8, d f16;
 * value = (d·scale)·(q − 32).
 */
export function dequantizeQ6_K(src: Uint8Array, dst: Float32Array): void {
  const half = halfTable();
  const blocks = dst.length / QK_K;
  for (let i = 0; i < blocks; i++) {
    const at = i * 210;
    const d = half[src[at + 208] | (src[at + 209] << 8)];
    for (let n = 0; n < 2; n++) {
      const ql = at + n * 64;
      const qh = at + 128 + n * 32;
      const sc = at + 192 + n * 8;
      const y = i * QK_K + n * 128;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = src[qh + l];
        const q1 = ((src[ql + l] & 0x0f) | ((h & 3) << 4)) - 32;
        const q2 = ((src[ql + l + 32] & 0x0f) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((src[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((src[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
        // d·scale first (exact), then one rounding of the product with q, as ggml.
        dst[y + l] = Math.fround(d * ((src[sc + is] << 24) >> 24)) * q1;
        dst[y + l + 32] = Math.fround(d * ((src[sc + is + 2] << 24) >> 24)) * q2;
        dst[y + l + 64] = Math.fround(d * ((src[sc + is + 4] << 24) >> 24)) * q3;
        dst[y + l + 96] = Math.fround(d * ((src[sc + is + 6] << 24) >> 24)) * q4;
      }
    }
  }
}
