// The O(vocab) work of sampling one row of logits on the CPU: argmax, raw log-softmax statistics
// and one draw from the temperature-scaled, min_p / top_k / top_p filtered distribution. The
// semantics are src/engine/sampler/reference.ts's; bias and penalties are applied by the caller.
// Plain C++ written so the compiler vectorizes the passes over the whole row (sampler.cpp also
// builds them for AVX2 + FMA and picks that build on CPUs that have it).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ck::sampler {

// First index of the largest value; NaN is never the largest. When every value is NaN or -inf:
// the first -inf, else 0.
int64_t argmax(const float* x, int64_t n);

// log Σ exp(x) over the row, and the ids of its `top_n` largest values, largest first (equal
// values by ascending id; NaN never listed). top_n <= n.
double log_normalizer_and_top(const float* x, int64_t n, int64_t top_n, int32_t* top_ids);

struct Filters {
  float temperature;  // > 0: greedy rows never get here.
  int64_t top_k;      // 0 when off (as top_k >= n).
  double top_p;       // 1 when off.
  double min_p;       // 0 when off.
};

// Buffers reused between rows so sampling does not allocate at every step.
struct Scratch {
  std::vector<float> scaled;       // the row divided by the temperature
  std::vector<float> weights;      // exp(scaled - max) of the tokens that may be drawn, 0 for the others
  std::vector<float> values;       // candidates' scaled logits, in id order
  std::vector<int32_t> ids;        // their token ids
  std::vector<float> work;         // candidate values reordered to find the top_k / top_p cuts
  std::vector<double> block_sums;  // for the inverse-CDF walk

  // Room for rows of n tokens (grows only, so it never refills memory it already has).
  void reserve(int64_t n) {
    if (int64_t(scaled.size()) >= n) return;
    for (auto* v : {&scaled, &weights, &values, &work}) v->resize(std::size_t(n));
    ids.resize(std::size_t(n));
  }
};

// One token drawn from the filtered distribution by inverse CDF with the uniform u in [0, 1),
// walking tokens in ascending id order: the token depends only on the row, the filters and u.
// A row whose maximum is not finite (NaN, ±inf) has no distribution: its argmax is returned.
int64_t sample(const float* x, int64_t n, const Filters& f, double u, Scratch& scratch);

}  // namespace ck::sampler
