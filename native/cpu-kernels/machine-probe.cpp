#include "machine-probe.h"

#include <algorithm>
#include <chrono>

#include "buffer.h"
#include "kernels.h"
#include "thread-pool.h"

namespace ck {

double read_bandwidth_gbs(int64_t bytes, int threads) {
  Buffer buf{size_t(bytes)};
  uint64_t* data = reinterpret_cast<uint64_t*>(buf.data());
  const int64_t n = bytes / 8;
  for (int64_t i = 0; i < n; i++) data[i] = uint64_t(i);
  ThreadPool pool(threads);
  double best = 0;
  uint64_t sink = 0;
  for (int pass = 0; pass < 5; pass++) {
    const auto start = std::chrono::steady_clock::now();
    uint64_t parts[256] = {};
    pool.parallel_for(n, 1 << 16, [&](int64_t b, int64_t e, int t) {
      // Integer XOR: vectorizes at any optimization flags, and is far faster than memory.
      uint64_t x0 = 0, x1 = 0, x2 = 0, x3 = 0;
      int64_t i = b;
      for (; i + 4 <= e; i += 4) {
        x0 ^= data[i];
        x1 ^= data[i + 1];
        x2 ^= data[i + 2];
        x3 ^= data[i + 3];
      }
      for (; i < e; i++) x0 ^= data[i];
      parts[t] ^= x0 ^ x1 ^ x2 ^ x3;
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (uint64_t p : parts) sink ^= p;
    best = std::max(best, double(bytes) / s / 1e9);
  }
  return sink == 42 ? best + 1e-9 : best;  // keeps the reads from being optimized away
}

double fma_peak_gflops(int threads) {
  ThreadPool pool(threads);
  const KernelTable* k = &select_kernels();
  double best = 0;
  for (int pass = 0; pass < 3; pass++) {
    const auto start = std::chrono::steady_clock::now();
    double flops[256] = {};
    struct Ctx {
      const KernelTable* k;
      double* flops;
    } ctx{k, flops};
    // Every thread at once: what the cores do together.
    pool.run([](void* p, int t, int) { static_cast<Ctx*>(p)->flops[t] = static_cast<Ctx*>(p)->k->fma_peak(20'000'000); }, &ctx);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double total = 0;
    for (int t = 0; t < threads; t++) total += flops[t];
    best = std::max(best, total / s / 1e9);
  }
  return best;
}

}  // namespace ck
