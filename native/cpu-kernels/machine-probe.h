// What this machine can do, measured, for judging the kernels' figures: memory read bandwidth
// and f32 FMA throughput with all threads (benchmarks only).
#pragma once
#include <cstdint>

namespace ck {

// GB/s reading a buffer of `bytes` with `threads` threads (best of a few passes).
double read_bandwidth_gbs(int64_t bytes, int threads);
// GFLOP/s of f32 fused multiply-adds from registers with `threads` threads (the chosen variant).
double fma_peak_gflops(int threads);

}  // namespace ck
