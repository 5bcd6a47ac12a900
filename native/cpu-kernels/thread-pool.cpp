#include "thread-pool.h"

#include <chrono>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax() { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax() { asm volatile("yield" ::: "memory"); }
#else
static inline void cpu_relax() {}
#endif

namespace ck {

// Pauses (~tens of ns each) before a waiting thread starts yielding its core.
static constexpr uint32_t kSpinsBeforeYield = 2000;

ThreadPool::ThreadPool(int threads, int spin_us) : threads_(threads < 1 ? 1 : threads), spin_us_(spin_us) {
  for (int i = 1; i < threads_; i++) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run(Job job, void* ctx) {
  if (threads_ == 1) {
    job(ctx, 0, 1);
    return;
  }
  job_ = job;
  ctx_ = ctx;
  pending_.store(threads_ - 1, std::memory_order_relaxed);
  // seq_cst on both sides (here and the sleeping worker's count and check) so that either the
  // worker sees the new generation or this thread sees it sleeping.
  generation_.fetch_add(1);
  if (sleeping_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  job(ctx, 0, threads_);
  // Waiting for workers: after a short spin, yield the core. A worker the OS preempted (other
  // processes share these cores) may be waiting for exactly this core to finish its chunk.
  for (uint32_t spins = 0; pending_.load(std::memory_order_acquire) > 0; spins++) {
    if (spins < kSpinsBeforeYield) cpu_relax();
    else std::this_thread::yield();
  }
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    // Spin for new work, then sleep until woken.
    auto start = std::chrono::steady_clock::now();
    uint32_t spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen) {
      if (spins < kSpinsBeforeYield) cpu_relax();
      else std::this_thread::yield();
      if (++spins % 1024 == 0 &&
          std::chrono::steady_clock::now() - start > std::chrono::microseconds(spin_us_)) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleeping_.fetch_add(1);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
        sleeping_.fetch_sub(1);
        break;
      }
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    job_(ctx_, index, threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace ck
