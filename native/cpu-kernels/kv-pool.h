// Keys and values of every cached token, addressed by slot: one slot holds one token's keys and
// values for every layer. A sequence is a list of slots (its positions 0, 1, …), so sequences
// that share a prefix share its slots and nothing is copied to reuse it (SGLang's token-to-KV
// pool). Per layer, keys of all slots are contiguous ([capacity][kvHeads·headDim]), then values.
// The memory is reserved up front and only pages that are written become resident.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ck {

class KvPool {
 public:
  KvPool(int layers, int64_t row_floats, int64_t capacity);
  ~KvPool();
  KvPool(const KvPool&) = delete;
  KvPool& operator=(const KvPool&) = delete;

  int64_t capacity() const { return capacity_; }
  int64_t row_floats() const { return row_floats_; }
  float* keys(int layer) { return base_ + (int64_t(layer) * 2) * capacity_ * row_floats_; }
  float* values(int layer) { return base_ + (int64_t(layer) * 2 + 1) * capacity_ * row_floats_; }
  // Returns the memory of slots [begin, end) to the system (they read as zeros afterwards).
  void release(int64_t begin, int64_t end);

 private:
  int layers_;
  int64_t row_floats_, capacity_;
  float* base_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace ck
