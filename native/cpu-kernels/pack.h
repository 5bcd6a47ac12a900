// Conversions of checkpoint tensors into the kernels' layouts (weight.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ck {

enum class ScaleType { F16, BF16, F32 };

// MLX affine quantization (uint32 words, value j of a group at bits (j mod per-word)·bits of word
// j / per-word; per-group scale and bias) → Q4 or Q8 blocks. Returns false, leaving `out` empty,
// when a scale or bias is not exactly an f16 (the blocks could not hold it).
bool pack_affine(const uint32_t* words, const uint8_t* scales, const uint8_t* biases, ScaleType st, int64_t rows,
                 int64_t cols, int bits, int group, std::vector<uint8_t>& out, std::string& error);

// MLX affine quantization → dense f32 [rows][cols], value = scale·q + bias in f32 (as MLX's
// dequantize computes it): for scales the blocks cannot hold.
void dequant_affine(const uint32_t* words, const uint8_t* scales, const uint8_t* biases, ScaleType st, int64_t rows,
                    int64_t cols, int bits, int group, float* out);

// f32 / f16 / bf16 values → f32.
void to_f32(const uint8_t* data, ScaleType type, int64_t count, float* out);

}  // namespace ck
