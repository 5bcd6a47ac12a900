// Portable SIMD through GCC/Clang vector extensions. The kernels are written once against `vf`
// (kLanes floats) and compiled once per instruction set (see kernels.cpp): 16 lanes with
// AVX-512, 8 with AVX2, 4 otherwise. Loads and stores go through memcpy (unaligned moves).
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#define CK_LANES 16
#elif defined(__AVX2__)
#define CK_LANES 8
#else
#define CK_LANES 4
#endif

#if defined(__x86_64__)
// GCC 12's AVX-512 headers trip its own uninitialized-value warnings.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

namespace ck {

constexpr int kLanes = CK_LANES;
typedef float vf __attribute__((vector_size(kLanes * 4)));
typedef int32_t vi __attribute__((vector_size(kLanes * 4)));
typedef uint8_t vb __attribute__((vector_size(kLanes)));
typedef int8_t vsb __attribute__((vector_size(kLanes)));

static inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
static inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
static inline vf splat(float x) {
#if defined(__AVX512F__)
  return reinterpret_cast<vf>(_mm512_set1_ps(x));
#elif defined(__AVX2__)
  return reinterpret_cast<vf>(_mm256_set1_ps(x));
#else
  return vf{x, x, x, x};
#endif
}

// kLanes bytes widened to ints (compilers scalarize the generic conversion, hence intrinsics).
static inline vi load_u8(const uint8_t* p) {
#if defined(__AVX512F__)
  return reinterpret_cast<vi>(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
#elif defined(__AVX2__)
  return reinterpret_cast<vi>(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
#else
  vb b;
  std::memcpy(&b, p, sizeof b);
  return __builtin_convertvector(b, vi);
#endif
}
static inline vf to_float(vi v) { return __builtin_convertvector(v, vf); }

static inline float hsum(vf v) {
#if defined(__AVX512F__) || defined(__AVX2__)
#if defined(__AVX512F__)
  typedef float v8 __attribute__((vector_size(32)));
  const v8 halves = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                    __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m256 x = reinterpret_cast<__m256>(halves);
#else
  const __m256 x = reinterpret_cast<__m256>(v);
#endif
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
#else
  float s = 0;
  for (int i = 0; i < kLanes; i++) s += v[i];
  return s;
#endif
}

static inline float hmax(vf v) {
  float m = v[0];
  for (int i = 1; i < kLanes; i++) m = v[i] > m ? v[i] : m;
  return m;
}

static inline vf vmax(vf a, vf b) { return a > b ? a : b; }

// e^x for every lane, within ~2 ulp over the range where it is finite; lanes below -87.3 give 0.
static inline vf vexp(vf x) {
  const vf hi = splat(88.3762626647949f), lo = splat(-87.3365447505531f);
  vf z = x < hi ? x : hi;
  const vi underflow = z < lo;
  z = z > lo ? z : lo;
  const vf t = z * splat(1.44269504088896341f);
  const vi n = __builtin_convertvector(t + (vf)(t >= 0 ? splat(0.5f) : splat(-0.5f)), vi);
  const vf fn = to_float(n);
  vf r = z - fn * splat(0.693359375f);
  r = r - fn * splat(-2.12194440e-4f);
  vf p = splat(1.9875691500e-4f);
  p = p * r + splat(1.3981999507e-3f);
  p = p * r + splat(8.3334519073e-3f);
  p = p * r + splat(4.1665795894e-2f);
  p = p * r + splat(1.6666665459e-1f);
  p = p * r + splat(5.0000001201e-1f);
  p = p * (r * r) + r + splat(1.0f);
  vi bits = (n + 127) << 23;
  vf scale;
  std::memcpy(&scale, &bits, sizeof scale);
  vf out = p * scale;
  vi outBits;
  std::memcpy(&outBits, &out, sizeof out);
  outBits = outBits & ~underflow;
  std::memcpy(&out, &outBits, sizeof out);
  return out;
}

static inline float half_to_float(uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        exp--;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
#endif
}

}  // namespace ck
