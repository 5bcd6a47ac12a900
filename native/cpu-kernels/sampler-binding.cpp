// The sampler's Node-API functions over logits in a JS-owned Float32Array [rows × vocab]
// (src/engine/sampler/cpu-sampler.ts drives them). Arguments are checked here, so a bad call is
// a JavaScript exception, never an out-of-bounds read.
#include "sampler-binding.h"

#include <cmath>

#include "napi-args.h"
#include "sampler.h"

namespace ck {
namespace {

using namespace ck::napi;

// The row at `offset` of `vocab` values, checked to lie inside the array.
const float* logits_row(const Args& a, size_t array_arg, int64_t offset, int64_t vocab) {
  size_t n;
  const float* x = a.typed<float>(array_arg, napi_float32_array, &n, "logits");
  if (vocab <= 0 || vocab > INT32_MAX) throw Error{"vocab must be a positive int32"};
  if (offset < 0 || offset + vocab > int64_t(n)) throw Error{"the row lies outside the logits array"};
  return x + offset;
}

// argmaxRows(logits: Float32Array, vocab, rows: Int32Array, out: Int32Array): out[i] = first
// index of the largest value of row rows[i].
napi_value ArgmaxRows(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 4);
    const int64_t vocab = a.integer(1, "vocab");
    size_t count, out_count;
    const int32_t* rows = a.typed<int32_t>(2, napi_int32_array, &count, "rows");
    int32_t* out = a.typed<int32_t>(3, napi_int32_array, &out_count, "out");
    if (out_count < count) throw Error{"out is shorter than rows"};
    for (size_t i = 0; i < count; i++) {
      out[i] = int32_t(sampler::argmax(logits_row(a, 0, int64_t(rows[i]) * vocab, vocab), vocab));
    }
    return undefined(env);
  });
}

// logprobStats(logits: Float32Array, offset, vocab, topIds: Int32Array) → log Σ exp of the row;
// fills topIds with the ids of its topIds.length largest values, largest first.
napi_value LogprobStats(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 4);
    const int64_t vocab = a.integer(2, "vocab");
    const float* x = logits_row(a, 0, a.integer(1, "offset"), vocab);
    size_t top_n;
    int32_t* top_ids = a.typed<int32_t>(3, napi_int32_array, &top_n, "topIds");
    if (int64_t(top_n) > vocab) throw Error{"topIds is longer than the vocabulary"};
    return make_number(env, sampler::log_normalizer_and_top(x, vocab, int64_t(top_n), top_ids));
  });
}

// sampleRow(logits: Float32Array, offset, vocab, temperature, topK, topP, minP, u) → token id drawn
// with the uniform u from the row scaled by 1/temperature and filtered by min_p, top_k, top_p.
napi_value SampleRow(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 8);
    const int64_t vocab = a.integer(2, "vocab");
    const float* x = logits_row(a, 0, a.integer(1, "offset"), vocab);
    sampler::Filters f;
    const double temperature = a.number(3, "temperature");
    f.top_k = a.integer(4, "topK");
    f.top_p = a.number(5, "topP");
    f.min_p = a.number(6, "minP");
    const double u = a.number(7, "u");
    f.temperature = float(temperature);
    if (!(f.temperature > 0) || !std::isfinite(f.temperature)) throw Error{"temperature must be positive and finite"};
    if (f.top_k < 0 || f.top_k > vocab) throw Error{"topK must be in [0, vocab]"};
    if (f.top_k == vocab) f.top_k = 0;
    if (!(f.top_p > 0 && f.top_p <= 1)) throw Error{"topP must be in (0, 1]"};
    if (!(f.min_p >= 0 && f.min_p <= 1)) throw Error{"minP must be in [0, 1]"};
    if (!(u >= 0 && u < 1)) throw Error{"u must be in [0, 1)"};
    // One set of buffers per thread that samples, grown to the largest vocabulary seen.
    thread_local sampler::Scratch scratch;
    return make_number(env, double(sampler::sample(x, vocab, f, u, scratch)));
  });
}

}  // namespace

void register_sampler_functions(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"argmaxRows", nullptr, ArgmaxRows, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"logprobStats", nullptr, LogprobStats, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sampleRow", nullptr, SampleRow, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace ck
