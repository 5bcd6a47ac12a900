#include "pack.h"

#include <cmath>
#include <cstring>

#include "simd.h"
#include "weight.h"

namespace ck {

static float read_scalar(const uint8_t* p, ScaleType t, int64_t i) {
  switch (t) {
    case ScaleType::F16: {
      uint16_t h;
      std::memcpy(&h, p + i * 2, 2);
      return half_to_float(h);
    }
    case ScaleType::BF16: {
      uint16_t h;
      std::memcpy(&h, p + i * 2, 2);
      const uint32_t bits = uint32_t(h) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    case ScaleType::F32: {
      float f;
      std::memcpy(&f, p + i * 4, 4);
      return f;
    }
  }
  return 0;
}

// f16 bits of v when v is exactly representable as f16.
static bool exact_half(float v, uint16_t& out) {
  if (v == 0) {
    out = std::signbit(v) ? 0x8000 : 0;
    return true;
  }
  if (!std::isfinite(v)) return false;
  uint32_t x;
  std::memcpy(&x, &v, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const int exp = int((x >> 23) & 0xff) - 127;
  uint32_t mant = x & 0x7fffff;
  if (exp > 15) return false;
  if (exp >= -14) {
    if (mant & 0x1fff) return false;
    out = uint16_t(sign | uint32_t(exp + 15) << 10 | mant >> 13);
    return true;
  }
  // Subnormal f16: value = m · 2^-24 with m < 1024.
  const int shift = -14 - exp;  // 1 … 
  if (shift > 10) return false;
  mant |= 0x800000;
  if (mant & ((1u << (13 + shift)) - 1)) return false;
  out = uint16_t(sign | mant >> (13 + shift));
  return true;
}

bool pack_affine(const uint32_t* words, const uint8_t* scales, const uint8_t* biases, ScaleType st, int64_t rows,
                 int64_t cols, int bits, int group, std::vector<uint8_t>& out, std::string& error) {
  if ((bits != 4 && bits != 8) || group % kBlock || cols % group) {
    error = "unsupported quantization: " + std::to_string(bits) + " bits, groups of " + std::to_string(group);
    return false;
  }
  const WeightType type = bits == 4 ? WeightType::Q4 : WeightType::Q8;
  const size_t bb = row_bytes(type, kBlock);
  const int64_t blocks_per_row = cols / kBlock, groups_per_row = cols / group;
  const int64_t words_per_row = cols * bits / 32;
  const int per_word = 32 / bits;
  const uint32_t mask = (1u << bits) - 1;
  out.assign(size_t(rows) * size_t(blocks_per_row) * bb, 0);
  for (int64_t r = 0; r < rows; r++) {
    const uint32_t* wr = words + r * words_per_row;
    for (int64_t b = 0; b < blocks_per_row; b++) {
      const int64_t g = r * groups_per_row + (b * kBlock) / group;
      uint16_t d, m;
      if (!exact_half(read_scalar(scales, st, g), d) || !exact_half(biases ? read_scalar(biases, st, g) : 0.0f, m)) {
        out.clear();
        return false;
      }
      uint8_t* blk = out.data() + size_t(r * blocks_per_row + b) * bb;
      std::memcpy(blk, &d, 2);
      std::memcpy(blk + 2, &m, 2);
      for (int j = 0; j < kBlock; j++) {
        const int64_t idx = b * kBlock + j;
        const uint32_t q = (wr[idx / per_word] >> ((idx % per_word) * bits)) & mask;
        if (bits == 8) {
          blk[4 + j] = uint8_t(q);
        } else if (j < 16) {
          blk[4 + j] |= uint8_t(q);
        } else {
          blk[4 + j - 16] |= uint8_t(q << 4);
        }
      }
    }
  }
  return true;
}

void dequant_affine(const uint32_t* words, const uint8_t* scales, const uint8_t* biases, ScaleType st, int64_t rows,
                    int64_t cols, int bits, int group, float* out) {
  const int64_t groups_per_row = cols / group, words_per_row = cols * bits / 32;
  const int per_word = 32 / bits;
  const uint32_t mask = (1u << bits) - 1;
  for (int64_t r = 0; r < rows; r++) {
    const uint32_t* wr = words + r * words_per_row;
    for (int64_t j = 0; j < cols; j++) {
      const int64_t g = r * groups_per_row + j / group;
      const float s = read_scalar(scales, st, g), b = biases ? read_scalar(biases, st, g) : 0.0f;
      const uint32_t q = (wr[j / per_word] >> ((j % per_word) * bits)) & mask;
      out[r * cols + j] = s * float(q) + b;
    }
  }
}

void to_f32(const uint8_t* data, ScaleType type, int64_t count, float* out) {
  for (int64_t i = 0; i < count; i++) out[i] = read_scalar(data, type, i);
}

}  // namespace ck
