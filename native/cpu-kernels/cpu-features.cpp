#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace ck {

const KernelTable* kernels_named(const char* name) {
  if (!std::strcmp(name, "generic")) return &kernels_generic();
#if defined(__x86_64__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  if (!std::strcmp(name, "avx2") && avx2) return &kernels_avx2();
  if (!std::strcmp(name, "avx512") && avx512) return &kernels_avx512();
#endif
  return nullptr;
}

const KernelTable& select_kernels() {
  const char* forced = std::getenv("CK_KERNELS");
  if (forced) {
    if (const KernelTable* k = kernels_named(forced)) return *k;
  }
  for (const char* name : {"avx512", "avx2"}) {
    if (const KernelTable* k = kernels_named(name)) return *k;
  }
  return kernels_generic();
}

}  // namespace ck
