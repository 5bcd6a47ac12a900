// Kernel bodies, compiled three times with different -m flags (see build.mjs): CK_ISA names the
// variant and becomes the namespace of this copy, so the copies link side by side.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "simd.h"

#ifndef CK_ISA
#error "CK_ISA must name the instruction-set variant"
#endif
#define CK_CAT2(a, b) a##b
#define CK_CAT(a, b) CK_CAT2(a, b)
#define CK_STR2(a) #a
#define CK_STR(a) CK_STR2(a)

namespace ck {
namespace CK_ISA {
namespace {

// Register tile of the matmul: MR activation rows × NR weight rows of accumulators. The panel
// path (f32 weights from cache, no dequantization in the loop) has registers for more rows.
constexpr int kNR = 4;
constexpr int kPanelMR = kLanes == 16 ? 6 : 2;
constexpr int kMR = kLanes == 16 ? 4 : 2;

// Weights of chunk c (kLanes values starting at input c of a 32-value block) as floats.
template <WeightType T>
static inline vf block_chunk(const uint8_t* block, int c, vf d, vf m) {
  if constexpr (T == WeightType::Q4) {
    const BlockQ4* b = reinterpret_cast<const BlockQ4*>(block);
    vi q = load_u8(b->qs + (c & 15));
    q = c < 16 ? (q & 15) : (q >> 4);
    return to_float(q) * d + m;
  } else {
    const BlockQ8* b = reinterpret_cast<const BlockQ8*>(block);
    return to_float(load_u8(b->qs + c)) * d + m;
  }
}

// How far ahead of the block being read each weight row is prefetched (measured best of 256 B to
// 8 KiB on a 2-core EPYC: a 30 MB GEMV at 26 GB/s instead of 4).
constexpr int kPrefetchBytes = 4096;

template <WeightType T>
constexpr size_t block_bytes() {
  return T == WeightType::Q4 ? sizeof(BlockQ4) : sizeof(BlockQ8);
}

// MR×NR outputs of a quantized matrix: rows w[r] (r < NR) against activations x[m] (m < MR).
template <WeightType T, int MR, int NR>
static void quant_tile(const uint8_t* const* wrows, int64_t blocks, const float* x, int64_t ldx, float* y,
                       int64_t ldy, bool accumulate) {
  vf acc[MR][NR];
  for (int i = 0; i < MR; i++)
    for (int r = 0; r < NR; r++) acc[i][r] = vf{};
  for (int64_t b = 0; b < blocks; b++) {
    vf d[NR], m[NR];
    const uint8_t* blk[NR];
    for (int r = 0; r < NR; r++) {
      blk[r] = wrows[r] + b * block_bytes<T>();
      // The hardware prefetcher follows few interleaved streams; fetch each row's data ahead.
      __builtin_prefetch(blk[r] + kPrefetchBytes);
      const uint16_t* h = reinterpret_cast<const uint16_t*>(blk[r]);
      d[r] = splat(half_to_float(h[0]));
      m[r] = splat(half_to_float(h[1]));
    }
    const float* xb = x + b * kBlock;
#pragma GCC unroll 4
    for (int c = 0; c < kBlock; c += kLanes) {
      vf w[NR];
      for (int r = 0; r < NR; r++) w[r] = block_chunk<T>(blk[r], c, d[r], m[r]);
      for (int i = 0; i < MR; i++) {
        const vf xv = load(xb + i * ldx + c);
        for (int r = 0; r < NR; r++) acc[i][r] += xv * w[r];
      }
    }
  }
  for (int i = 0; i < MR; i++)
    for (int r = 0; r < NR; r++) {
      const float s = hsum(acc[i][r]);
      y[i * ldy + r] = accumulate ? y[i * ldy + r] + s : s;
    }
}

template <int MR, int NR>
static void f32_tile(const float* const* wrows, int64_t cols, const float* x, int64_t ldx, float* y, int64_t ldy,
                     bool accumulate) {
  vf acc[MR][NR];
  for (int i = 0; i < MR; i++)
    for (int r = 0; r < NR; r++) acc[i][r] = vf{};
  const int64_t vec = cols - cols % kLanes;
  for (int64_t k = 0; k < vec; k += kLanes) {
    vf w[NR];
    for (int r = 0; r < NR; r++) {
      __builtin_prefetch(wrows[r] + k + kPrefetchBytes / 4);
      w[r] = load(wrows[r] + k);
    }
    for (int i = 0; i < MR; i++) {
      const vf xv = load(x + i * ldx + k);
      for (int r = 0; r < NR; r++) acc[i][r] += xv * w[r];
    }
  }
  for (int i = 0; i < MR; i++)
    for (int r = 0; r < NR; r++) {
      float s = hsum(acc[i][r]);
      for (int64_t k = vec; k < cols; k++) s += x[i * ldx + k] * wrows[r][k];
      y[i * ldy + r] = accumulate ? y[i * ldy + r] + s : s;
    }
}

template <int MR, int NR>
static void tile(const Weight& w, int64_t n, const float* x, int64_t ldx, float* y, int64_t ldy, bool accumulate) {
  const uint8_t* rows[NR];
  for (int r = 0; r < NR; r++) rows[r] = w.row(n + r);
  switch (w.type) {
    case WeightType::Q4:
      quant_tile<WeightType::Q4, MR, NR>(rows, w.cols / kBlock, x, ldx, y + n, ldy, accumulate);
      break;
    case WeightType::Q8:
      quant_tile<WeightType::Q8, MR, NR>(rows, w.cols / kBlock, x, ldx, y + n, ldy, accumulate);
      break;
    case WeightType::F32:
      f32_tile<MR, NR>(reinterpret_cast<const float* const*>(rows), w.cols, x, ldx, y + n, ldy, accumulate);
      break;
  }
}

template <int MR>
static void rows_tile(const Weight& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t n0, int64_t n1,
                      bool accumulate) {
  int64_t n = n0;
  for (; n + kNR <= n1; n += kNR) tile<MR, kNR>(w, n, x, ldx, y, ldy, accumulate);
  for (; n < n1; n++) tile<MR, 1>(w, n, x, ldx, y, ldy, accumulate);
}

template <WeightType T>
static void dequant_blocks(const uint8_t* p, int64_t blocks, float* out) {
  for (int64_t b = 0; b < blocks; b++) {
    const uint8_t* blk = p + b * block_bytes<T>();
    const uint16_t* h = reinterpret_cast<const uint16_t*>(blk);
    const vf d = splat(half_to_float(h[0])), m = splat(half_to_float(h[1]));
    for (int c = 0; c < kBlock; c += kLanes) store(out + b * kBlock + c, block_chunk<T>(blk, c, d, m));
  }
}

void dequant_row(const Weight& w, int64_t row, float* out) {
  const uint8_t* p = w.row(row);
  switch (w.type) {
    case WeightType::F32: std::memcpy(out, p, size_t(w.cols) * 4); break;
    case WeightType::Q4: dequant_blocks<WeightType::Q4>(p, w.cols / kBlock, out); break;
    case WeightType::Q8: dequant_blocks<WeightType::Q8>(p, w.cols / kBlock, out); break;
  }
}

// Quantized weights against many activation rows (prompt chunks): each weight row is dequantized
// once into an f32 panel that stays in cache while every tile of rows reads it, instead of once
// per tile. The panel holds exactly the values the on-the-fly path computes and the tiles add
// them in the same order, so both paths give the same bits: a row's result never depends on how
// many rows share the batch.
constexpr int64_t kPanelRows = 16;
constexpr int64_t kPanelMinRows = 8;

// MR activation rows against `count` panel rows.
template <int MR>
static void panel_rows(const float* const* rows, int64_t count, int64_t K, const float* x, int64_t ldx, float* y,
                       int64_t ldy, bool accumulate) {
  int64_t r = 0;
  for (; r + kNR <= count; r += kNR) f32_tile<MR, kNR>(rows + r, K, x, ldx, y + r, ldy, accumulate);
  for (; r < count; r++) f32_tile<MR, 1>(rows + r, K, x, ldx, y + r, ldy, accumulate);
}

static void panel_rows_n(int64_t mr, const float* const* rows, int64_t count, int64_t K, const float* x, int64_t ldx,
                         float* y, int64_t ldy, bool accumulate) {
  switch (mr) {
#if CK_LANES == 16
    case 6: panel_rows<6>(rows, count, K, x, ldx, y, ldy, accumulate); break;
    case 5: panel_rows<5>(rows, count, K, x, ldx, y, ldy, accumulate); break;
    case 4: panel_rows<4>(rows, count, K, x, ldx, y, ldy, accumulate); break;
    case 3: panel_rows<3>(rows, count, K, x, ldx, y, ldy, accumulate); break;
#endif
    case 2: panel_rows<2>(rows, count, K, x, ldx, y, ldy, accumulate); break;
    default: panel_rows<1>(rows, count, K, x, ldx, y, ldy, accumulate); break;
  }
}

static void matmul_panel(const Weight& w, const float* x, int64_t M, int64_t ldx, float* y, int64_t ldy, int64_t n0,
                         int64_t n1, bool accumulate) {
  thread_local std::vector<float> panel;
  const int64_t K = w.cols;
  if (int64_t(panel.size()) < kPanelRows * K) panel.resize(kPanelRows * K);
  const float* rows[kPanelRows];
  for (int64_t nb = n0; nb < n1; nb += kPanelRows) {
    const int64_t count = std::min(kPanelRows, n1 - nb);
    for (int64_t r = 0; r < count; r++) {
      rows[r] = panel.data() + r * K;
      dequant_row(w, nb + r, panel.data() + r * K);
    }
    // Full tiles, then the rest in one or two tiles of at least 3 rows where possible: a thin
    // last tile reads its weights for few FMAs.
    int64_t m = 0;
    auto tile = [&](int64_t mr) {
      panel_rows_n(mr, rows, count, K, x + m * ldx, ldx, y + m * ldy + nb, ldy, accumulate);
      m += mr;
    };
    int64_t full = M / kPanelMR, rest = M % kPanelMR;
    if (rest > 0 && rest < 3 && full > 0) {
      full -= 1;
      rest += kPanelMR;
    }
    for (int64_t t = 0; t < full; t++) tile(kPanelMR);
    if (rest > kPanelMR) {
      tile((rest + 1) / 2);
      tile(rest / 2);
    } else if (rest > 0) {
      tile(rest);
    }
  }
}

void matmul(const Weight& w, const float* x, int64_t M, int64_t ldx, float* y, int64_t ldy, int64_t n0, int64_t n1,
            bool accumulate) {
  if (M >= kPanelMinRows && w.type != WeightType::F32) {
    matmul_panel(w, x, M, ldx, y, ldy, n0, n1, accumulate);
    return;
  }
  // Blocks of activation rows small enough to stay in L2 while the weight rows stream past.
  constexpr int64_t kRowBlock = 64;
  for (int64_t m0 = 0; m0 < M; m0 += kRowBlock) {
    const int64_t m1 = std::min(M, m0 + kRowBlock);
    for (int64_t nb = n0; nb < n1; nb += 64) {
      const int64_t ne = std::min(n1, nb + 64);
      int64_t m = m0;
      for (; m + kMR <= m1; m += kMR) rows_tile<kMR>(w, x + m * ldx, ldx, y + m * ldy, ldy, nb, ne, accumulate);
      for (; m < m1; m++) rows_tile<1>(w, x + m * ldx, ldx, y + m * ldy, ldy, nb, ne, accumulate);
    }
  }
}

void rmsnorm(const float* x, const float* weight, float eps, int64_t n, float* out) {
  vf acc{};
  const int64_t vec = n - n % kLanes;
  for (int64_t i = 0; i < vec; i += kLanes) {
    const vf v = load(x + i);
    acc += v * v;
  }
  float ss = hsum(acc);
  for (int64_t i = vec; i < n; i++) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / float(n) + eps);
  const vf s = splat(inv);
  for (int64_t i = 0; i < vec; i += kLanes) store(out + i, load(x + i) * s * load(weight + i));
  for (int64_t i = vec; i < n; i++) out[i] = x[i] * inv * weight[i];
}

void rope(float* x, int heads, int half, const float* cos, const float* sin) {
  for (int h = 0; h < heads; h++) {
    float* a = x + h * 2 * half;
    float* b = a + half;
    int i = 0;
    for (; i + kLanes <= half; i += kLanes) {
      const vf x1 = load(a + i), x2 = load(b + i), c = load(cos + i), s = load(sin + i);
      store(a + i, x1 * c - x2 * s);
      store(b + i, x2 * c + x1 * s);
    }
    for (; i < half; i++) {
      const float x1 = a[i], x2 = b[i];
      a[i] = x1 * cos[i] - x2 * sin[i];
      b[i] = x2 * cos[i] + x1 * sin[i];
    }
  }
}

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const vf g = load(gate + i);
    store(out + i, g / (splat(1.0f) + vexp(-g)) * load(up + i));
  }
  for (; i < n; i++) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

static inline float dot(const float* a, const float* b, int d) {
  vf acc{};
  int i = 0;
  for (; i + kLanes <= d; i += kLanes) acc += load(a + i) * load(b + i);
  float s = hsum(acc);
  for (; i < d; i++) s += a[i] * b[i];
  return s;
}

void attend(const float* q, int groups, int d, const float* kbase, const float* vbase, int64_t stride,
            const int32_t* slots, int64_t len, float scale, float* out, float* scratch) {
  // Scores of every group for every key, then softmax and the weighted sum of values.
  for (int64_t t = 0; t < len; t++) {
    const float* k = kbase + int64_t(slots[t]) * stride;
    for (int g = 0; g < groups; g++) scratch[g * len + t] = dot(q + g * d, k, d) * scale;
  }
  for (int g = 0; g < groups; g++) {
    float* s = scratch + g * len;
    float mx = -INFINITY;
    for (int64_t t = 0; t < len; t++) mx = std::max(mx, s[t]);
    int64_t t = 0;
    vf sum{};
    for (; t + kLanes <= len; t += kLanes) {
      const vf e = vexp(load(s + t) - splat(mx));
      store(s + t, e);
      sum += e;
    }
    float total = hsum(sum);
    for (; t < len; t++) {
      s[t] = std::exp(s[t] - mx);
      total += s[t];
    }
    const float inv = 1.0f / total;
    for (t = 0; t < len; t++) s[t] *= inv;
  }
  for (int g = 0; g < groups; g++) std::fill(out + g * d, out + (g + 1) * d, 0.0f);
  for (int64_t t = 0; t < len; t++) {
    const float* v = vbase + int64_t(slots[t]) * stride;
    for (int g = 0; g < groups; g++) {
      const float p = scratch[g * len + t];
      float* o = out + g * d;
      int i = 0;
      const vf pv = splat(p);
      for (; i + kLanes <= d; i += kLanes) store(o + i, load(o + i) + pv * load(v + i));
      for (; i < d; i++) o[i] += p * v[i];
    }
  }
}

void max_logsumexp(const float* x, int64_t n, float* max_out, float* lse_out) {
  vf vm = splat(-INFINITY);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) vm = vmax(vm, load(x + i));
  float mx = hmax(vm);
  for (; i < n; i++) mx = std::max(mx, x[i]);
  vf sum{};
  i = 0;
  const vf vmx = splat(mx);
  for (; i + kLanes <= n; i += kLanes) sum += vexp(load(x + i) - vmx);
  double total = hsum(sum);
  for (; i < n; i++) total += std::exp(double(x[i]) - mx);
  *max_out = mx;
  *lse_out = float(std::log(total));
}

}  // namespace

const KernelTable table = {CK_STR(CK_ISA), matmul, dequant_row, rmsnorm, rope, swiglu, attend, max_logsumexp};

}  // namespace CK_ISA

const KernelTable& CK_CAT(kernels_, CK_ISA)() { return CK_ISA::table; }

}  // namespace ck
