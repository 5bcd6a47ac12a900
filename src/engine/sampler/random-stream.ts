import { mx, type MxArray } from '../mlx.ts';
// Per-row randomness that depends only on (request seed, tokens generated so far): the same seed
// gives the same tokens whatever else is in the batch and at whatever row index.

const MASK64 = (1n << 64n) - 1n;
const GOLDEN_GAMMA = 0x9e3779b97f4a7c15n;

/** SplitMix64's finalizer: a bijection on 64-bit integers that spreads every input bit. */
function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/**
 * The 64-bit key of one decode step of one request, as four 16-bit parts: element `step` of a
 * SplitMix64 stream keyed by the hashed request seed. 16-bit parts because node-mlx builds arrays
 * from JS numbers through float32, which holds integers exactly only up to 2^24.
 */
export function stepKey(seed: number, step: number): number[] {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`step must be a non-negative integer, got ${step}`);
  const base = mix64(BigInt.asUintN(64, BigInt(seed)));
  const z = mix64((base + GOLDEN_GAMMA * BigInt(step + 1)) & MASK64);
  return [48n, 32n, 16n, 0n].map((shift) => Number((z >> shift) & 0xffffn));
}

/** Gumbel draws from u = 0 are -inf; a finite floor keeps "noise + logit" finite for allowed tokens. */
const GUMBEL_FLOOR = -1e30;

const gumbelByKey = new Map<number, (keys: MxArray) => MxArray>();

/**
 * Standard Gumbel noise [rows, length], row r drawn from its own key (stepKey). MLX 0.0.7's random
 * ops take one key, but vmap over a stack of keys batches them: each row equals the one-key draw
 * whatever the other rows are, at a fraction of the cost of one op per row.
 */
export function gumbelRows(stepKeys: readonly number[][], length: number): MxArray {
  let draw = gumbelByKey.get(length);
  if (!draw) {
    draw = mx.vmap((key: MxArray) => mx.random.gumbel([length], mx.float32, key)) as (keys: MxArray) => MxArray;
    gumbelByKey.set(length, draw);
  }
  const parts = mx.array(stepKeys as number[][], mx.uint32);
  const sixteen = mx.array(16, mx.uint32);
  const half = (i: number) => mx.bitwiseOr(
    mx.leftShift(parts.index(mx.Slice(), i), sixteen),
    parts.index(mx.Slice(), i + 1),
  );
  const keys = mx.stack([half(0), half(2)], 1);
  return mx.maximum(draw(keys), GUMBEL_FLOOR);
}
