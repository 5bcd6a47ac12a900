// ggml's 32-value block formats beyond what the native kernels run: Q5_0, Q5_1 and IQ4_NL
// (llama-quantize's fallbacks for rows whose length is not a multiple of 256 in K-quant files).
// Each decodes `dst.length / 32` blocks from `src` into `dst` as ggml-quants.c's
// dequantize_row_* does, with the same float operations in the same order, so the values are
// bit-identical: every product of an f16 scale and a small integer is exact in f32, and a
// Float32Array store rounds a double once, as an f32 operation would.
import { halfTable } from './f16.ts';

const QK = 32;

/** Q5_0 (22 bytes): d f16, qh u32 (bit j = high bit of value j), qs[16]; value = d·(q − 16). */
export function dequantizeQ5_0(src: Uint8Array, dst: Float32Array): void {
  const half = halfTable();
  const blocks = dst.length / QK;
  for (let i = 0; i < blocks; i++) {
    const at = i * 22;
    const d = half[src[at] | (src[at + 1] << 8)];
    const qh = (src[at + 2] | (src[at + 3] << 8) | (src[at + 4] << 16) | (src[at + 5] << 24)) >>> 0;
    const y = i * QK;
    for (let j = 0; j < 16; j++) {
      const q = src[at + 6 + j];
      const x0 = ((q & 0x0f) | (((qh >>> j) << 4) & 0x10)) - 16;
      const x1 = ((q >> 4) | ((qh >>> (j + 12)) & 0x10)) - 16;
      dst[y + j] = x0 * d;
      dst[y + j + 16] = x1 * d;
    }
  }
}

/** Q5_1 (24 bytes): d f16, m f16, qh u32, qs[16]; value = d·q + m. */
export function dequantizeQ5_1(src: Uint8Array, dst: Float32Array): void {
  const half = halfTable();
  const blocks = dst.length / QK;
  for (let i = 0; i < blocks; i++) {
    const at = i * 24;
    const d = half[src[at] | (src[at + 1] << 8)];
    const m = half[src[at + 2] | (src[at + 3] << 8)];
    const qh = (src[at + 4] | (src[at + 5] << 8) | (src[at + 6] << 16) | (src[at + 7] << 24)) >>> 0;
    const y = i * QK;
    for (let j = 0; j < 16; j++) {
      const q = src[at + 8 + j];
      const x0 = (q & 0x0f) | (((qh >>> j) << 4) & 0x10);
      const x1 = (q >> 4) | ((qh >>> (j + 12)) & 0x10);
      dst[y + j] = x0 * d + m;
      dst[y + j + 16] = x1 * d + m;
    }
  }
}

/** IQ4_NL's 16 non-linear levels (ggml-common.h kvalues_iq4nl). */
export const IQ4_NL_LEVELS = Int8Array.of(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);

/** IQ4_NL (18 bytes): d f16, qs[16] of 4-bit indices into IQ4_NL_LEVELS; value = d·level. */
export function dequantizeIQ4_NL(src: Uint8Array, dst: Float32Array): void {
  const half = halfTable();
  const blocks = dst.length / QK;
  for (let i = 0; i < blocks; i++) {
    const at = i * 18;
    const d = half[src[at] | (src[at + 1] << 8)];
    const y = i * QK;
    for (let j = 0; j < 16; j++) {
      const q = src[at + 2 + j];
      dst[y + j] = d * IQ4_NL_LEVELS[q & 0x0f];
      dst[y + j + 16] = d * IQ4_NL_LEVELS[q >> 4];
    }
  }
}
