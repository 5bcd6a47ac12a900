// A persistent pool of worker threads for data-parallel loops. The calling thread takes part
// (as thread 0), so a pool of n threads starts n - 1 workers. Workers spin for a short while
// after each job (the next op of a forward pass follows within microseconds) and then sleep, so
// an idle engine does not burn a core.
#pragma once
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace ck {

class ThreadPool {
 public:
  using Job = void (*)(void* ctx, int thread, int threads);

  explicit ThreadPool(int threads, int spin_us = 200);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // Chunks per thread a parallel_for is cut into (balance against per-chunk overhead).
  static constexpr int64_t kChunksPerThread = 8;

  // Runs job(ctx, t, n) on every thread t in [0, n) and returns when all have finished.
  void run(Job job, void* ctx);

  // Calls fn(begin, end, thread) over [0, count) in chunks that are multiples of `grain` (but the
  // last). Threads take chunks as they go rather than a fixed share each, so a thread that the OS
  // preempts (the server process shares these cores) delays one chunk, not the whole op. Every
  // element is still computed by exactly one call, so results do not depend on the split.
  template <typename Fn>
  void parallel_for(int64_t count, int64_t grain, Fn&& fn) {
    if (count <= 0) return;
    if (grain < 1) grain = 1;
    const int64_t units = (count + grain - 1) / grain;
    if (threads_ == 1 || units == 1) {
      fn(int64_t{0}, count, 0);
      return;
    }
    struct Ctx {
      Fn* fn;
      int64_t count, grain, units, chunk;
      std::atomic<int64_t> next{0};
    } ctx{&fn, count, grain, units, std::max<int64_t>(1, units / (int64_t(threads_) * kChunksPerThread)), {}};
    run(
        [](void* p, int t, int) {
          auto* c = static_cast<Ctx*>(p);
          for (;;) {
            const int64_t u = c->next.fetch_add(c->chunk, std::memory_order_relaxed);
            if (u >= c->units) break;
            const int64_t b = u * c->grain;
            const int64_t e = std::min(c->count, (u + c->chunk) * c->grain);
            (*c->fn)(b, e, t);
          }
        },
        &ctx);
  }

 private:
  void worker(int index);

  const int threads_;
  const int spin_us_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sleeping_{0};
  Job job_ = nullptr;
  void* ctx_ = nullptr;
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace ck
