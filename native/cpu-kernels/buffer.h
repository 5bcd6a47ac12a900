// A large, zero-initialized byte buffer for weights. Its memory is mapped with transparent huge
// pages where the kernel allows it (madvise): reading weights past the reach of the TLB's 4 KiB
// entries otherwise costs a page walk every few rows, and the projections slowed to a quarter of
// memory speed for matrices beyond ~10 MB.
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

}  // namespace ck
