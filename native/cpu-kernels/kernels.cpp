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

void rope(float* x, int heads, int stride, int half, const float* cos, const float* sin) {
  for (int h = 0; h < heads; h++) {
    float* a = x + int64_t(h) * stride;
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

void lora_expand(const float* t, int64_t M, int64_t ldt, int64_t rank, const float* bt, int64_t ldb, const int32_t* begin,
                 const int32_t* end, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  for (int64_t m = 0; m < M; m++) {
    float* yr = y + m * ldy;
    const float* tr = t + m * ldt;
    for (int64_t k = 0; k < rank; k++) {
      const int64_t lo = std::max<int64_t>(n0, begin[k]), hi = std::min<int64_t>(n1, end[k]);
      const float* b = bt + k * ldb;
      const vf s = splat(tr[k]);
      int64_t n = lo;
      for (; n + kLanes <= hi; n += kLanes) store(yr + n, load(yr + n) + s * load(b + n));
      for (; n < hi; n++) yr[n] += tr[k] * b[n];
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

// gelu(x) = x/2 · (1 + tanh(√(2/π)·(x + 0.044715·x³))), as torch's approximate="tanh"; tanh(y) is
// 1 - 2/(e^{2y} + 1), which saturates correctly at both ends.
void geglu(const float* gate, const float* up, int64_t n, float* out) {
  constexpr float kAlpha = 0.7978845608028654f, kBeta = 0.044715f;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const vf g = load(gate + i);
    const vf y = splat(kAlpha) * (g + splat(kBeta) * g * g * g);
    const vf t = splat(1.0f) - splat(2.0f) / (vexp(y + y) + splat(1.0f));
    store(out + i, splat(0.5f) * g * (splat(1.0f) + t) * load(up + i));
  }
  for (; i < n; i++) {
    const float g = gate[i];
    out[i] = 0.5f * g * (1.0f + std::tanh(kAlpha * (g + kBeta * g * g * g))) * up[i];
  }
}

// r[i] = the sum of v[i]'s lanes, for kLanes vectors at once (a transpose-and-add tree: ~3
// operations per sum instead of ~8 for a horizontal sum each). The additions each lane gets
// depend only on its index, so a key's score never depends on its neighbours.
static inline vf lane_sums(const vf* v) {
#if CK_LANES == 16
  __m512 s[8], t[4];
  for (int k = 0; k < 8; k++) {
    const __m512 a = reinterpret_cast<__m512>(v[2 * k]), b = reinterpret_cast<__m512>(v[2 * k + 1]);
    s[k] = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  }
  for (int k = 0; k < 4; k++) {
    t[k] = _mm512_add_ps(_mm512_shuffle_ps(s[2 * k], s[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(s[2 * k], s[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  }
  // t[k]'s four 128-bit lanes hold partial sums of v[4k..4k+3]; add the lanes up.
  const __m512 w0 = _mm512_add_ps(_mm512_shuffle_f32x4(t[0], t[1], 0x44), _mm512_shuffle_f32x4(t[0], t[1], 0xee));
  const __m512 w1 = _mm512_add_ps(_mm512_shuffle_f32x4(t[2], t[3], 0x44), _mm512_shuffle_f32x4(t[2], t[3], 0xee));
  return reinterpret_cast<vf>(_mm512_add_ps(_mm512_shuffle_f32x4(w0, w1, 0x88), _mm512_shuffle_f32x4(w0, w1, 0xdd)));
#elif CK_LANES == 8
  __m256 s[4], t[2];
  for (int k = 0; k < 4; k++) {
    const __m256 a = reinterpret_cast<__m256>(v[2 * k]), b = reinterpret_cast<__m256>(v[2 * k + 1]);
    s[k] = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
  }
  for (int k = 0; k < 2; k++) {
    t[k] = _mm256_add_ps(_mm256_shuffle_ps(s[2 * k], s[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm256_shuffle_ps(s[2 * k], s[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  }
  return reinterpret_cast<vf>(_mm256_add_ps(_mm256_permute2f128_ps(t[0], t[1], 0x20), _mm256_permute2f128_ps(t[0], t[1], 0x31)));
#else
  vf r;
  for (int i = 0; i < kLanes; i++) {
    float sum = 0;
    for (int j = 0; j < kLanes; j++) sum += v[i][j];
    r[i] = sum;
  }
  return r;
#endif
}

// out[r] = Σ_t p[r][t]·v_t for RB rows at once, NV vectors of kLanes per value row, the
// accumulators in registers. p rows hold zeros past each row's own keys.
template <int RB, int NV>
static void weighted_values(const float* p, int64_t p_stride, int64_t keys, const float* vbase, int64_t stride,
                            const int32_t* slots, float* const* out) {
  vf acc[RB][NV];
  for (int r = 0; r < RB; r++)
    for (int c = 0; c < NV; c++) acc[r][c] = vf{};
  for (int64_t t = 0; t < keys; t++) {
    const float* v = vbase + int64_t(slots[t]) * stride;
    vf vv[NV];
    for (int c = 0; c < NV; c++) vv[c] = load(v + c * kLanes);
    for (int r = 0; r < RB; r++) {
      const vf pr = splat(p[r * p_stride + t]);
      for (int c = 0; c < NV; c++) acc[r][c] += pr * vv[c];
    }
  }
  for (int r = 0; r < RB; r++)
    for (int c = 0; c < NV; c++) store(out[r] + c * kLanes, acc[r][c]);
}

template <int NV>
static void weighted_values_rows(const float* p, int64_t p_stride, int rows, int64_t keys, const float* vbase,
                                 int64_t stride, const int32_t* slots, float* const* out) {
  constexpr int kRB = NV >= 16 ? 1 : 16 / NV > 4 ? 4 : 16 / NV;
  int r = 0;
  for (; r + kRB <= rows; r += kRB) weighted_values<kRB, NV>(p + r * p_stride, p_stride, keys, vbase, stride, slots, out + r);
  for (; r < rows; r++) weighted_values<1, NV>(p + r * p_stride, p_stride, keys, vbase, stride, slots, out + r);
}

void attend(const float* q, int64_t q_stride, int tokens, const int32_t* starts, const int32_t* lens, int groups, int d,
            const float* kbase, const float* vbase, int64_t stride, const int32_t* slots, float scale, float softcap,
            float* out, int64_t out_stride, float* scratch) {
  int64_t longest = 0;
  for (int j = 0; j < tokens; j++) longest = std::max<int64_t>(longest, lens[j]);
  const int rows = tokens * groups;
  // Score rows are padded to whole blocks of kLanes keys; keys past `longest` read zeros.
  const int64_t padded = (longest + kLanes - 1) / kLanes * kLanes;
  const int dv = d - d % kLanes;
  thread_local std::vector<float> zeros;
  if (int(zeros.size()) < d) zeros.assign(d, 0.0f);
  auto row_q = [&](int r) { return q + (r / groups) * q_stride + (r % groups) * d; };
  auto row_out = [&](int r) { return out + (r / groups) * out_stride + (r % groups) * d; };

  // Scores, kLanes keys at a time: each key's products summed by lane_sums (plus a scalar tail
  // when d is not a multiple of kLanes).
  for (int64_t kb = 0; kb < padded; kb += kLanes) {
    const float* keys[kLanes];
    for (int i = 0; i < kLanes; i++) keys[i] = kb + i < longest ? kbase + int64_t(slots[kb + i]) * stride : zeros.data();
    for (int r = 0; r < rows; r++) {
      if (kb >= lens[r / groups]) continue;
      const float* qr = row_q(r);
      vf partial[kLanes];
      for (int i = 0; i < kLanes; i++) {
        vf acc{};
        for (int c = 0; c < dv; c += kLanes) acc += load(qr + c) * load(keys[i] + c);
        partial[i] = acc;
      }
      vf sums = lane_sums(partial);
      if (dv < d) {
        for (int i = 0; i < kLanes; i++) {
          float tail = 0;
          for (int c = dv; c < d; c++) tail += qr[c] * keys[i][c];
          sums[i] += tail;
        }
      }
      store(scratch + r * padded + kb, sums * splat(scale));
      if (softcap > 0) {
        float* s = scratch + r * padded + kb;
        for (int i = 0; i < kLanes; i++) s[i] = std::tanh(s[i] / softcap) * softcap;
      }
    }
  }
  // Softmax of each row over its own keys; zeros around them, so the value sums can run over all.
  for (int r = 0; r < rows; r++) {
    const int64_t len = lens[r / groups];
    const int64_t first = starts ? starts[r / groups] : 0;
    float* s = scratch + r * padded;
    float mx = -INFINITY;
    for (int64_t t = first; t < len; t++) mx = std::max(mx, s[t]);
    std::fill(s, s + first, 0.0f);
    int64_t t = first;
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
    for (t = first; t < len; t++) s[t] *= inv;
    std::fill(s + len, s + padded, 0.0f);
  }
  // The weighted sum of values, several rows at a time so each value row is read once for them.
  float* outs[256];
  for (int r0 = 0; r0 < rows; r0 += 256) {
    const int n = std::min(256, rows - r0);
    for (int r = 0; r < n; r++) outs[r] = row_out(r0 + r);
    const float* p = scratch + r0 * padded;
    switch (d == dv ? d / kLanes : 0) {
      case 1: weighted_values_rows<1>(p, padded, n, longest, vbase, stride, slots, outs); break;
      case 2: weighted_values_rows<2>(p, padded, n, longest, vbase, stride, slots, outs); break;
      case 4: weighted_values_rows<4>(p, padded, n, longest, vbase, stride, slots, outs); break;
      case 8: weighted_values_rows<8>(p, padded, n, longest, vbase, stride, slots, outs); break;
      case 16: weighted_values_rows<16>(p, padded, n, longest, vbase, stride, slots, outs); break;
      // head_dim 256 (Gemma) on 8 lanes.
      case 32: weighted_values_rows<32>(p, padded, n, longest, vbase, stride, slots, outs); break;
      default:
        for (int r = 0; r < n; r++) {
          float* o = outs[r];
          std::fill(o, o + d, 0.0f);
          for (int64_t t = 0; t < longest; t++) {
            const float pr = p[r * padded + t];
            const float* v = vbase + int64_t(slots[t]) * stride;
            for (int c = 0; c < d; c++) o[c] += pr * v[c];
          }
        }
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

double fma_peak(int64_t iterations) {
  // Ten independent chains in registers: enough to cover the FMA latency on every core we target.
  const vf m = splat(0.9999f), c = splat(1e-4f);
  vf a0 = splat(1.0f), a1 = splat(1.1f), a2 = splat(1.2f), a3 = splat(1.3f), a4 = splat(1.4f);
  vf a5 = splat(1.5f), a6 = splat(1.6f), a7 = splat(1.7f), a8 = splat(1.8f), a9 = splat(1.9f);
  for (int64_t it = 0; it < iterations; it++) {
    a0 = a0 * m + c, a1 = a1 * m + c, a2 = a2 * m + c, a3 = a3 * m + c, a4 = a4 * m + c;
    a5 = a5 * m + c, a6 = a6 * m + c, a7 = a7 * m + c, a8 = a8 * m + c, a9 = a9 * m + c;
  }
  const vf sum = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9;
  return sum[0] == 42.0f ? 0 : double(iterations) * 10 * kLanes * 2;
}

}  // namespace

const KernelTable table = {CK_STR(CK_ISA), matmul, dequant_row, rmsnorm, rope, swiglu, geglu, attend, fma_peak, lora_expand, max_logsumexp};

}  // namespace CK_ISA

const KernelTable& CK_CAT(kernels_, CK_ISA)() { return CK_ISA::table; }

}  // namespace ck
