// A projection matrix [rows = outputs][cols = inputs] in one of the layouts the kernels read.
// Quantized layouts keep 32 consecutive inputs of one row per block, scale and offset in f16:
//   Q4: value j = d·q_j + m, q_j in the low nibble of qs[j] (j < 16) or the high nibble of
//       qs[j - 16] (j >= 16): GGUF's Q4_1 byte for byte (Q4_0 is m = -8d).
//   Q8: value j = d·q_j + m, q_j an unsigned byte (GGUF's Q8_0 is q + 128 with m = -128d).
// Both hold MLX's affine quantization exactly too (w = scale·q + bias per group of 32, 64 or 128).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "buffer.h"

namespace ck {

enum class WeightType : int { F32 = 0, Q4 = 1, Q8 = 2 };

struct BlockQ4 {
  uint16_t d, m;
  uint8_t qs[16];
};
struct BlockQ8 {
  uint16_t d, m;
  uint8_t qs[32];
};
static_assert(sizeof(BlockQ4) == 20, "BlockQ4 is 20 bytes");
static_assert(sizeof(BlockQ8) == 36, "BlockQ8 is 36 bytes");

constexpr int kBlock = 32;

inline size_t row_bytes(WeightType t, int64_t cols) {
  switch (t) {
    case WeightType::F32: return size_t(cols) * 4;
    case WeightType::Q4: return size_t(cols / kBlock) * sizeof(BlockQ4);
    case WeightType::Q8: return size_t(cols / kBlock) * sizeof(BlockQ8);
  }
  return 0;
}

struct Weight {
  WeightType type = WeightType::F32;
  int64_t rows = 0, cols = 0;
  Buffer data;  // rows * row_bytes(type, cols)
  std::vector<float> bias;    // empty, or one per row

  const uint8_t* row(int64_t r) const { return data.data() + size_t(r) * row_bytes(type, cols); }
  size_t bytes() const { return data.size() + bias.size() * 4; }
};

}  // namespace ck
