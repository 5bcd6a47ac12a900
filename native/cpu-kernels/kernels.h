// The compute kernels, compiled once per instruction set (kernels.cpp) and chosen at run time by
// the CPU's features (cpu-features.cpp). Every kernel works on a slice of its output so the
// caller can split it over threads; none allocates.
#pragma once
#include <cstdint>

#include "weight.h"

namespace ck {

struct KernelTable {
  const char* name;
  // y[m][n] = Σ_k x[m][k]·W[n][k] (+ y[m][n] when accumulate) for m < M and n in [n0, n1).
  void (*matmul)(const Weight& w, const float* x, int64_t M, int64_t ldx, float* y, int64_t ldy, int64_t n0,
                 int64_t n1, bool accumulate);
  // One row of W as floats (an embedding lookup).
  void (*dequant_row)(const Weight& w, int64_t row, float* out);
  // out[i] = x[i] / rms(x) · weight[i], over n values.
  void (*rmsnorm)(const float* x, const float* weight, float eps, int64_t n, float* out);
  // Rotates heads of dimension 2·half in place, pairs (i, i + half), by cos/sin[half].
  // Rotates the first 2·half values of each of `heads` heads `stride` floats apart.
  void (*rope)(float* x, int heads, int stride, int half, const float* cos, const float* sin);
  // out[i] = silu(gate[i]) · up[i].
  void (*swiglu)(const float* gate, const float* up, int64_t n, float* out);
  // out[i] = gelu(gate[i]) · up[i], gelu in its tanh approximation (Gemma).
  void (*geglu)(const float* gate, const float* up, int64_t n, float* out);
  // Attention of `tokens` query tokens of one sequence, each with `groups` query heads (dimension
  // d) sharing one KV head. Token j (its heads at q + j·q_stride) sees keys/values of positions
  // [starts[j], lens[j]) (starts null: from 0), found at base + slots[t]·stride; its outputs go
  // to out + j·out_stride. Scores are q·k·scale, soft-capped to tanh(s / softcap)·softcap when
  // softcap > 0. Each
  // (token, head) row is computed as if alone (same operations, same order), so a token's result
  // does not depend on the others; they share the reads of the keys and values. scratch holds
  // tokens·groups·max(lens) floats.
  void (*attend)(const float* q, int64_t q_stride, int tokens, const int32_t* starts, const int32_t* lens, int groups,
                 int d, const float* kbase, const float* vbase, int64_t stride, const int32_t* slots, float scale,
                 float softcap, float* out, int64_t out_stride, float* scratch);
  // Runs `iterations` rounds of f32 FMAs on registers only; returns the flops done (to measure the
  // core's peak, for benchmarks).
  double (*fma_peak)(int64_t iterations);
  // The expand half of a LoRA update: y[m][n] += Σ_k t[m][k]·bt[k][n] for m < M and n in [n0, n1)
  // ∩ [begin[k], end[k]) (where row k of bt may be nonzero). B is stored transposed, [rank][ldb],
  // so each rank row is one vector multiply-add over the outputs (a dot product of `rank` values
  // per output would spend more on horizontal sums than on the products).
  void (*lora_expand)(const float* t, int64_t M, int64_t ldt, int64_t rank, const float* bt, int64_t ldb,
                      const int32_t* begin, const int32_t* end, float* y, int64_t ldy, int64_t n0, int64_t n1);
  // Largest value and log Σ exp(x - max) over n values.
  void (*max_logsumexp)(const float* x, int64_t n, float* max, float* lse);
};

const KernelTable& kernels_generic();
#if defined(__x86_64__)
const KernelTable& kernels_avx2();
const KernelTable& kernels_avx512();
#endif

// The best table this CPU runs (CK_KERNELS=generic|avx2|avx512 picks another it can run).
const KernelTable& select_kernels();
// A table by name, or nullptr when this CPU cannot run it (for tests and benchmarks).
const KernelTable* kernels_named(const char* name);

}  // namespace ck
