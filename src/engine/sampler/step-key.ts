// The random key of one decode step of one request, in plain JS (no MLX), so that every sampler
// draws from the same per-request stream: it depends only on (request seed, tokens generated so
// far), so the same seed gives the same tokens whatever else is in the batch and at any row index.

const MASK64 = (1n << 64n) - 1n;
const GOLDEN_GAMMA = 0x9e3779b97f4a7c15n;

/** SplitMix64's finalizer: a bijection on 64-bit integers that spreads every input bit. */
function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/**
 * The 64-bit key of one decode step of one request, as four 16-bit parts (most significant first):
 * element `step` of a SplitMix64 stream keyed by the hashed request seed. 16-bit parts because
 * node-mlx builds arrays from JS numbers through float32, which holds integers exactly only up to 2^24.
 */
export function stepKey(seed: number, step: number): number[] {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`step must be a non-negative integer, got ${step}`);
  const base = mix64(BigInt.asUintN(64, BigInt(seed)));
  const z = mix64((base + GOLDEN_GAMMA * BigInt(step + 1)) & MASK64);
  return [48n, 32n, 16n, 0n].map((shift) => Number((z >> shift) & 0xffffn));
}

/** A uniform number in [0, 1) from a step key's top 53 bits (every double in [0, 1) that is a multiple of 2^-53). */
export function stepUniform(key: readonly number[]): number {
  if (key.length !== 4) throw new RangeError(`a step key has four 16-bit parts, got ${key.length}`);
  const top53 = ((key[0] * 0x10000 + key[1]) * 0x10000 + key[2]) * 32 + (key[3] >>> 11);
  return top53 / 2 ** 53;
}
