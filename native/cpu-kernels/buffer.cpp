#include "buffer.h"

#include <sys/mman.h>

#include <new>

namespace ck {

static constexpr size_t kHugePage = size_t(2) << 20;
// Buffers from this size on get huge pages.
static constexpr size_t kHugeMin = size_t(8) << 20;

Buffer::~Buffer() { release(); }

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    release();
    base_ = o.base_;
    data_ = o.data_;
    size_ = o.size_;
    mapped_ = o.mapped_;
    o.base_ = o.data_ = nullptr;
    o.size_ = o.mapped_ = 0;
  }
  return *this;
}

void Buffer::allocate(size_t bytes) {
  release();
  if (bytes == 0) return;
  if (bytes < kHugeMin) {
    // Small buffers: plain pages. A huge page each would make a 0.3 MB matrix take 2 MB.
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    base_ = data_ = static_cast<uint8_t*>(p);
    size_ = mapped_ = bytes;
    return;
  }
  // Map a huge page more than needed and start at a huge-page boundary inside it.
  const size_t mapped = (bytes + 2 * kHugePage - 1) / kHugePage * kHugePage;
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  uint8_t* base = static_cast<uint8_t*>(p);
  uint8_t* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base) + kHugePage - 1) / kHugePage * kHugePage);
#ifdef MADV_HUGEPAGE
  madvise(aligned, (bytes + kHugePage - 1) / kHugePage * kHugePage, MADV_HUGEPAGE);
#endif
  // Keep the mapping's start so release() can unmap all of it.
  data_ = aligned;
  size_ = bytes;
  mapped_ = mapped;
  base_ = base;
}

void Buffer::view(uint8_t* data, size_t bytes) {
  release();
  data_ = data;
  size_ = bytes;
}

WeightArena::WeightArena(size_t reserve_bytes) : reserved_(reserve_bytes) {
  void* p = mmap(nullptr, reserved_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  base_ = static_cast<uint8_t*>(p);
#ifdef MADV_HUGEPAGE
  madvise(base_, reserved_, MADV_HUGEPAGE);
#endif
}

WeightArena::~WeightArena() {
  if (base_) munmap(base_, reserved_);
}

uint8_t* WeightArena::take(size_t bytes) {
  const size_t at = (used_ + 63) / 64 * 64;
  if (at + bytes > reserved_) throw std::bad_alloc();
  used_ = at + bytes;
  return base_ + at;
}

void Buffer::release() {
  if (base_) munmap(base_, mapped_);
  base_ = nullptr;
  data_ = nullptr;
  size_ = mapped_ = 0;
}

}  // namespace ck
