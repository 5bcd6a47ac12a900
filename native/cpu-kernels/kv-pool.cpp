#include "kv-pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <new>
#include <stdexcept>

namespace ck {

KvPool::KvPool(int layers, int64_t row_floats, int64_t capacity)
    : layers_(layers), row_floats_(row_floats), capacity_(capacity) {
  bytes_ = size_t(layers) * 2 * size_t(capacity) * size_t(row_floats) * sizeof(float);
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("cannot reserve memory for the KV pool");
  base_ = static_cast<float*>(p);
}

KvPool::~KvPool() {
  if (base_) munmap(base_, bytes_);
}

void KvPool::release(int64_t begin, int64_t end) {
  if (begin < 0) begin = 0;
  if (end > capacity_) end = capacity_;
  if (begin >= end) return;
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  for (int l = 0; l < layers_; l++) {
    for (float* region : {keys(l), values(l)}) {
      uintptr_t lo = reinterpret_cast<uintptr_t>(region + begin * row_floats_);
      uintptr_t hi = reinterpret_cast<uintptr_t>(region + end * row_floats_);
      lo = (lo + page - 1) / page * page;
      hi = hi / page * page;
      if (lo < hi) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
    }
  }
}

}  // namespace ck
