// A zero-initialized byte buffer for weights. Large ones (8 MB and up) are mapped with transparent
// huge pages where the kernel allows it (madvise): reading a matrix past the reach of the TLB's
// 4 KiB entries otherwise costs a page walk every few rows, and the projections slowed to a quarter
// of memory speed for matrices beyond ~10 MB. Smaller ones use plain pages, not to round each up
// to 2 MB.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ck {

class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t bytes) { allocate(bytes); }
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : base_(o.base_), data_(o.data_), size_(o.size_), mapped_(o.mapped_) {
    o.base_ = o.data_ = nullptr;
    o.size_ = o.mapped_ = 0;
  }
  Buffer& operator=(Buffer&& o) noexcept;

  void allocate(size_t bytes);
  // Points at `bytes` of memory someone else owns (a WeightArena); nothing is freed.
  void view(uint8_t* data, size_t bytes);
  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  void release();
  uint8_t* base_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t size_ = 0, mapped_ = 0;
};

// One model's weights back to back in a single huge-page mapping: the TLB reaches them all, and no
// small matrix is rounded up to a page of its own. A virtual range is reserved up front; only what
// is handed out becomes resident.
class WeightArena {
 public:
  explicit WeightArena(size_t reserve_bytes = size_t(64) << 30);
  ~WeightArena();
  WeightArena(const WeightArena&) = delete;
  WeightArena& operator=(const WeightArena&) = delete;

  // `bytes` of zeroed memory, 64-byte aligned, living as long as the arena.
  uint8_t* take(size_t bytes);

 private:
  uint8_t* base_ = nullptr;
  size_t reserved_ = 0, used_ = 0;
};

}  // namespace ck
