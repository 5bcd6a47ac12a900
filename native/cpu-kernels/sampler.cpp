// Sampling one row of logits (sampler.h). The passes over the whole row are flat loops the
// compiler vectorizes (maps, or reductions over a fixed set of lanes); top_k and top_p look for
// their cut only among the tokens just below the maximum, in the narrowest window that holds it,
// so the selection (nth_element, a quickselect on mass) touches only a few tokens.
//
// The addon builds this file with baseline flags (SSE2 on x86-64), where the exp loops run at
// half the speed AVX2 + FMA gives them. So on x86-64 each entry point is compiled twice: the row
// code is always inlined, once into a plain function and once into one with
// __attribute__((target("avx2,fma"))), and the entry point calls the one this CPU runs.
#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CK_SAMPLER_AVX2 1
#endif

// Row code: inlined into each variant, so it is compiled for that variant's instruction set.
#define CK_ROW inline __attribute__((always_inline))

namespace ck::sampler {
namespace {

// Independent accumulators per reduction: the compiler may not reorder float sums or maxima by
// itself (no -ffast-math), but it vectorizes a fixed set of lanes.
constexpr int kLanes = 8;

// Tokens are scanned in blocks of this many: a block where no value passes a bound is skipped
// after one vectorized count instead of a branch per token.
constexpr int64_t kScanBlock = 32;

// exp underflows float below this; tokens further below the maximum get weight 0 (they would
// carry less than 1e-37 of the top token's probability).
constexpr float kExpFloor = -87.f;

// Windows below the scaled maximum, in nats: a top_k or top_p cut is searched among the tokens of
// the narrowest window that holds it (found by binary search, as what a window holds only grows
// with its width). Steps of ~1.5x keep that window at a few times the tokens the cut needs.
constexpr float kWindows[] = {0.5f, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, INFINITY};
constexpr int kWindowCount = sizeof kWindows / sizeof kWindows[0];

// Blocks of weights summed before the inverse-CDF walk, so it adds up blocks, not tokens.
constexpr int64_t kPickBlock = 512;

// exp(d) for d in [kExpFloor, 0]: Cephes expf (range reduction by ln 2, degree-6 polynomial,
// ~1 ulp), without branches or calls so that loops using it vectorize.
CK_ROW float exp_nonpositive(float d) {
  const float y = d * 1.44269504088896341f;
  const int32_t k = int32_t(y - 0.5f);  // round to nearest: truncation goes toward 0 and y <= 0
  const float kf = float(k);
  const float r = (d - kf * 0.693359375f) + kf * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const int32_t bits = (k + 127) << 23;  // 2^k, k >= -126
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// keep ? a : b through bit masks. A ?: on floats can stay a branch (GCC keeps it whenever FP
// traps may matter), and a branch stops the loop around it from being vectorized; this never does.
CK_ROW float select(bool keep, float a, float b) {
  const uint32_t mask = 0u - uint32_t(keep);
  uint32_t ab, bb;
  std::memcpy(&ab, &a, sizeof a);
  std::memcpy(&bb, &b, sizeof b);
  const uint32_t bits = (ab & mask) | (bb & ~mask);
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// exp(v - max) for a value at most `max`; 0 for NaN and below kExpFloor.
CK_ROW float weight(float v, float max) {
  const float d = v - max;
  const bool in_range = d >= kExpFloor;
  return select(in_range, exp_nonpositive(select(in_range, d, kExpFloor)), 0.f);
}

// An int ordered as the float is (a > b exactly when order_key(a) > order_key(b)), with NaN
// mapped to -inf's key: integer maxima vectorize where float ones (with their NaN rules) do not.
CK_ROW int32_t order_key(float v) {
  const float kept = select(v == v, v, -INFINITY);
  int32_t bits;
  std::memcpy(&bits, &kept, sizeof bits);
  return bits ^ ((bits >> 31) & 0x7fffffff);
}

CK_ROW float from_order_key(int32_t key) {
  const int32_t bits = key ^ ((key >> 31) & 0x7fffffff);
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// The largest of n values, NaN ignored (-inf when all are NaN).
CK_ROW float max_value(const float* x, int64_t n) {
  int32_t m = order_key(-INFINITY);
  for (int64_t i = 0; i < n; i++) {
    const int32_t key = order_key(x[i]);
    m = key > m ? key : m;
  }
  return from_order_key(m);
}

// The first index of a value equal to v, or -1: blocks are tested with a vectorized count first.
CK_ROW int64_t first_index_of(const float* x, int64_t n, float v) {
  constexpr int64_t kBlock = 64;
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    int32_t hits = 0;
    for (int64_t j = 0; j < kBlock; j++) hits += x[i + j] == v;
    if (hits) break;
  }
  for (; i < n; i++)
    if (x[i] == v) return i;
  return -1;
}

// Σ w in double (a float sum over a whole row would lose ~1e-5 of the mass).
CK_ROW double sum(const float* w, int64_t n) {
  double lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; j++) lane[j] += double(w[i + j]);
  double s = 0;
  for (int j = 0; j < kLanes; j++) s += lane[j];
  for (; i < n; i++) s += double(w[i]);
  return s;
}

// w[i] = exp(s[i] - max).
CK_ROW void weights_of(const float* s, int64_t n, float max, float* w) {
  for (int64_t i = 0; i < n; i++) w[i] = weight(s[i], max);
}

// Σ exp(v - max) over n values, through a small buffer so the exp loop stays a plain map.
CK_ROW double mass_of(const float* v, int64_t n, float max) {
  float w[kPickBlock];
  double total = 0;
  for (int64_t i = 0; i < n; i += kPickBlock) {
    const int64_t count = std::min(kPickBlock, n - i);
    weights_of(v + i, count, max, w);
    total += sum(w, count);
  }
  return total;
}

// The index where the running sum of w first exceeds u·Σw: the inverse CDF in index order, so
// index i comes out with probability w[i] / Σw. Needs some positive weight.
CK_ROW int64_t pick(const float* w, int64_t n, double u, std::vector<double>& block_sums) {
  const int64_t blocks = (n + kPickBlock - 1) / kPickBlock;
  block_sums.resize(size_t(blocks));
  double total = 0;
  for (int64_t b = 0; b < blocks; b++) total += block_sums[b] = sum(w + b * kPickBlock, std::min(kPickBlock, n - b * kPickBlock));
  const double target = u * total;
  double before = 0;
  int64_t b = 0;
  for (; b + 1 < blocks && before + block_sums[b] <= target; b++) before += block_sums[b];
  int64_t last = -1;
  for (int64_t i = b * kPickBlock, end = std::min(n, i + kPickBlock); i < end; i++) {
    if (w[i] <= 0) continue;
    last = i;
    before += double(w[i]);
    if (before > target) return i;
  }
  // Only rounding gets here (the block's tokens summed in another order fall a hair short of the
  // target): the block's last weighted token, or the row's when the block has none.
  if (last >= 0) return last;
  for (int64_t i = n - 1; i >= 0; i--)
    if (w[i] > 0) return i;
  return 0;
}

// The smallest float >= t: a float v is >= t exactly when it is >= this.
float float_at_least(double t) {
  const float f = float(t);
  return double(f) < t ? std::nextafter(f, INFINITY) : f;
}

// How many values are >= floor.
CK_ROW int64_t count_from(const float* s, int64_t n, float floor) {
  int32_t lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; j++) lane[j] += s[i + j] >= floor;
  int64_t count = 0;
  for (int j = 0; j < kLanes; j++) count += lane[j];
  for (; i < n; i++) count += s[i] >= floor;
  return count;
}

// How many of n (a block's worth) values are > bound.
CK_ROW int32_t count_above(const float* x, int64_t n, float bound) {
  int32_t count = 0;
  for (int64_t i = 0; i < n; i++) count += x[i] > bound;
  return count;
}

// Writes the scaled logits >= floor (NaN never is) and their token ids, in id order, to values
// and ids (room for n each); returns how many.
CK_ROW int64_t collect_from(const float* s, int64_t n, float floor, float* values, int32_t* ids) {
  int64_t count = 0;
  for (int64_t i = 0; i < n; i += kScanBlock) {
    const int64_t end = std::min(n, i + kScanBlock);
    if (end - i == kScanBlock && count_from(s + i, kScanBlock, floor) == 0) continue;
    for (int64_t j = i; j < end; j++) {  // branch-free: every token is written, those that pass are kept
      values[count] = s[j];
      ids[count] = int32_t(j);
      count += s[j] >= floor;
    }
  }
  return count;
}

// Σ w[i] over the tokens with s[i] >= floor, in float: it only chooses a window.
CK_ROW double mass_from(const float* s, const float* w, int64_t n, float floor) {
  float lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; j++) lane[j] += select(s[i + j] >= floor, w[i + j], 0.f);
  double total = 0;
  for (int j = 0; j < kLanes; j++) total += lane[j];
  for (; i < n; i++) total += s[i] >= floor ? w[i] : 0.f;
  return total;
}

struct TopPCut {
  float last;    // the smallest value top_p keeps
  bool reached;  // false when the values ran out before their mass reached the goal
};

// reference.ts's top_p cut among `values` (every kept scaled logit from some floor up, in any
// order): walking down from the largest, the last value reached while the mass before it is
// < goal. A quickselect on mass rather than a sort: each round splits the range around a pivot
// into above / equal / below and keeps the part where the running mass crosses the goal.
CK_ROW TopPCut top_p_cut(float* values, int64_t count, float max, double goal) {
  float* lo = values;
  float* hi = values + count;
  double before = 0;  // mass of the kept values above [lo, hi); always < goal
  for (;;) {
    const float a = *lo, b = lo[(hi - lo) / 2], c = hi[-1];
    const float pivot = std::max(std::min(a, b), std::min(std::max(a, b), c));  // median of three
    float* const above_end = std::partition(lo, hi, [pivot](float v) { return v > pivot; });
    float* const equal_end = std::partition(above_end, hi, [pivot](float v) { return v == pivot; });
    const double above = mass_of(lo, above_end - lo, max);
    if (before + above >= goal) {  // crossed above the pivot (some values are, as before < goal)
      hi = above_end;
      continue;
    }
    before += above + mass_of(above_end, equal_end - above_end, max);
    // Crossed among the pivot's equals (ties at a cut are all kept), or no values are left.
    if (before >= goal || equal_end == hi) return {pivot, before >= goal};
    lo = equal_end;
  }
}

CK_ROW int64_t argmax_row(const float* x, int64_t n) {
  // When every value is NaN (or -inf) this is the first -inf, else 0.
  return std::max<int64_t>(first_index_of(x, n, max_value(x, n)), 0);
}

CK_ROW double log_normalizer_and_top_row(const float* x, int64_t n, int64_t top_n, int32_t* top_ids) {
  const float m = max_value(x, n);
  // No distribution when the maximum is not finite; logprobs come out inf or NaN, as log_softmax's.
  const double lse = std::isfinite(m) ? double(m) + std::log(mass_of(x, n, m)) : m == INFINITY ? INFINITY : NAN;

  // Insertion into a short list kept sorted, largest first. Once it is full, a block whose
  // largest value does not beat the list's last is skipped: nearly all of them.
  std::vector<float> top_values(static_cast<size_t>(top_n));
  int64_t filled = 0;
  const auto offer = [&](int64_t i) {
    const float v = x[i];
    if (filled == top_n ? !(v > top_values[top_n - 1]) : std::isnan(v)) return;
    int64_t p = filled < top_n ? filled++ : top_n - 1;
    for (; p > 0 && top_values[p - 1] < v; p--) {  // strict: an equal value with a lower id stays ahead
      top_values[p] = top_values[p - 1];
      top_ids[p] = top_ids[p - 1];
    }
    top_values[p] = v;
    top_ids[p] = int32_t(i);
  };
  if (top_n == 0) return lse;
  int64_t i = 0;
  for (; i + kScanBlock <= n; i += kScanBlock) {
    if (filled == top_n && count_above(x + i, kScanBlock, top_values[top_n - 1]) == 0) continue;
    for (int64_t j = i; j < i + kScanBlock; j++) offer(j);
  }
  for (; i < n; i++) offer(i);
  return lse;
}

CK_ROW int64_t sample_row(const float* x, int64_t n, const Filters& f, double u, Scratch& scratch) {
  const int64_t best = argmax_row(x, n);
  const float max = x[best] / f.temperature;
  if (!std::isfinite(max)) return best;
  scratch.reserve(n);
  float* const s = scratch.scaled.data();
  float* const w = scratch.weights.data();
  // Division, not multiplication by 1/T: the values the thresholds compare are the reference's x / T.
  for (int64_t i = 0; i < n; i++) s[i] = x[i] / f.temperature;
  if (f.top_k == 0 && f.top_p == 1 && f.min_p == 0) {
    weights_of(s, n, max, w);
    return pick(w, n, u, scratch.block_sums);
  }

  // Tokens are kept when their scaled logit is >= threshold (a value, so ties at a cut are all kept).
  float threshold = -INFINITY;
  if (f.min_p > 0) threshold = float_at_least(double(max) + std::log(f.min_p));

  // Candidates: the tokens from some floor up, a window below the maximum holding every token the
  // filters keep. Everything after this works on them alone.
  float* const values = scratch.values.data();
  int32_t* const ids = scratch.ids.data();
  float* const work = scratch.work.data();
  int64_t count = 0;
  if (f.top_k == 0 && f.min_p == 0) {
    // top_p alone: its goal is a share of the whole vocabulary's mass, and the window is the
    // narrowest whose mass reaches it. Rounding can make that test and the walk disagree, so a
    // walk that ends short of the goal widens the window.
    weights_of(s, n, max, w);
    const double goal = f.top_p * sum(w, n);
    int lo = 0, hi = kWindowCount - 1;
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (mass_from(s, w, n, max - kWindows[mid]) >= goal) hi = mid; else lo = mid + 1;
    }
    for (int window = lo;; window++) {
      count = collect_from(s, n, max - kWindows[window], values, ids);
      std::copy(values, values + count, work);
      const TopPCut cut = top_p_cut(work, count, max, goal);
      if (cut.reached || window == kWindowCount - 1) {
        threshold = cut.last;
        break;
      }
    }
  } else {
    float floor = threshold;
    if (f.top_k > 0) {
      // The narrowest window holding top_k kept tokens holds the k-th largest.
      int lo = 0, hi = kWindowCount - 1;
      while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if (count_from(s, n, std::max(threshold, max - kWindows[mid])) >= f.top_k) hi = mid; else lo = mid + 1;
      }
      floor = std::max(threshold, max - kWindows[lo]);
    }
    count = collect_from(s, n, floor, values, ids);
    if (f.top_k > 0 && count >= f.top_k) {  // else fewer than top_k pass min_p
      std::copy(values, values + count, work);
      std::nth_element(work, work + (f.top_k - 1), work + count, std::greater<float>());
      threshold = std::max(threshold, work[f.top_k - 1]);
    }
    if (f.top_p < 1) {
      int64_t kept = 0;
      for (int64_t i = 0; i < count; i++) {
        work[kept] = values[i];
        kept += values[i] >= threshold;
      }
      const double goal = f.top_p * mass_of(work, kept, max);
      threshold = std::max(threshold, top_p_cut(work, kept, max, goal).last);
    }
  }

  weights_of(values, count, max, w);
  for (int64_t i = 0; i < count; i++) w[i] = select(values[i] >= threshold, w[i], 0.f);
  return ids[pick(w, count, u, scratch.block_sums)];
}

#if CK_SAMPLER_AVX2
__attribute__((target("avx2,fma"))) int64_t argmax_avx2(const float* x, int64_t n) { return argmax_row(x, n); }

__attribute__((target("avx2,fma"))) double log_normalizer_and_top_avx2(const float* x, int64_t n, int64_t top_n, int32_t* top_ids) {
  return log_normalizer_and_top_row(x, n, top_n, top_ids);
}

__attribute__((target("avx2,fma"))) int64_t sample_avx2(const float* x, int64_t n, const Filters& f, double u, Scratch& scratch) {
  return sample_row(x, n, f, u, scratch);
}

// Decided once, like the other kernels' variant (cpu-features.cpp); CK_KERNELS=generic forces
// the baseline build here too.
bool use_avx2() {
  static const bool avx2 = [] {
    const char* forced = std::getenv("CK_KERNELS");
    if (forced && !std::strcmp(forced, "generic")) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return avx2;
}
#endif

}  // namespace

int64_t argmax(const float* x, int64_t n) {
#if CK_SAMPLER_AVX2
  if (use_avx2()) return argmax_avx2(x, n);
#endif
  return argmax_row(x, n);
}

double log_normalizer_and_top(const float* x, int64_t n, int64_t top_n, int32_t* top_ids) {
#if CK_SAMPLER_AVX2
  if (use_avx2()) return log_normalizer_and_top_avx2(x, n, top_n, top_ids);
#endif
  return log_normalizer_and_top_row(x, n, top_n, top_ids);
}

int64_t sample(const float* x, int64_t n, const Filters& f, double u, Scratch& scratch) {
#if CK_SAMPLER_AVX2
  if (use_avx2()) return sample_avx2(x, n, f, u, scratch);
#endif
  return sample_row(x, n, f, u, scratch);
}

}  // namespace ck::sampler
