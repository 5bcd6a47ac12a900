// The Node-API surface of the addon: build a model from weights handed over by JavaScript, run
// forward passes into caller-owned typed arrays, and a few helpers for loading and sampling.
// Every argument is checked here and reported as a JavaScript exception; nothing may abort.
#include <node_api.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "machine-probe.h"
#include "model.h"
#include "napi-args.h"
#include "pack.h"
#include "sampler-binding.h"

namespace {

using ck::Model;
using namespace ck::napi;

// createModel({hidden, layers, heads, kvHeads, headDim, intermediate, vocab, eps, ropeScale, threads},
//             invFreq: Float64Array, invFreqLong?: Float64Array | null) → handle
// invFreq has one frequency per rotated pair (fewer than headDim / 2 for a partial rotary
// embedding); invFreqLong, as many, LongRoPE's long-context ones; ropeScale multiplies cos and
// sin (LongRoPE's attention factor).
napi_value CreateModel(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 2);
    ck::ModelConfig c;
    c.hidden = int(a.field(0, "hidden"));
    c.layers = int(a.field(0, "layers"));
    c.heads = int(a.field(0, "heads"));
    c.kv_heads = int(a.field(0, "kvHeads"));
    c.head_dim = int(a.field(0, "headDim"));
    c.intermediate = int(a.field(0, "intermediate"));
    c.vocab = int(a.field(0, "vocab"));
    c.eps = float(a.field(0, "eps"));
    c.rope_scale = a.field(0, "ropeScale");
    c.threads = int(a.field(0, "threads"));
    // CK_SPIN_US overrides how long workers spin between ops before sleeping (for measurements).
    if (const char* spin = std::getenv("CK_SPIN_US")) c.spin_us = std::atoi(spin);
    if (c.hidden <= 0 || c.layers <= 0 || c.heads <= 0 || c.kv_heads <= 0 || c.head_dim <= 0 || c.intermediate <= 0 ||
        c.vocab <= 0 || c.threads <= 0 || c.threads > 256 || !(c.rope_scale > 0))
      throw Error{"invalid model configuration"};
    size_t n;
    const double* inv = a.typed<double>(1, napi_float64_array, &n, "invFreq");
    c.inv_freq.assign(inv, inv + n);
    if (!a.is_null(2)) {
      const double* lng = a.typed<double>(2, napi_float64_array, &n, "invFreqLong");
      c.inv_freq_long.assign(lng, lng + n);
    }
    auto* model = new Model(std::move(c));
    napi_value handle;
    napi_create_external(
        env, model, [](napi_env, void* p, void*) { delete static_cast<Model*>(p); }, nullptr, &handle);
    return handle;
  });
}

// setArchitecture(model, {embedScale, attnScale, attnSoftcap, finalSoftcap, gelu, window},
//                 sliding: Uint8Array (a flag per layer, or empty), invFreqLocal: Float64Array | null)
// The Gemma fields of ModelConfig (model.h), before the weights are set.
napi_value SetArchitecture(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 4);
    Model* m = a.model(0);
    ck::ModelConfig c;
    c.embed_scale = float(a.field(1, "embedScale"));
    c.attn_scale = float(a.field(1, "attnScale"));
    c.attn_softcap = float(a.field(1, "attnSoftcap"));
    c.final_softcap = float(a.field(1, "finalSoftcap"));
    c.gelu = a.field(1, "gelu") != 0;
    c.window = int(a.field(1, "window"));
    size_t n;
    const uint8_t* sliding = a.typed<uint8_t>(2, napi_uint8_array, &n, "sliding");
    c.sliding.assign(sliding, sliding + n);
    if (!a.is_null(3)) {
      const double* inv = a.typed<double>(3, napi_float64_array, &n, "invFreqLocal");
      c.inv_freq_local.assign(inv, inv + n);
    }
    if (!(c.embed_scale > 0) || c.attn_scale < 0 || c.attn_softcap < 0 || c.final_softcap < 0 || c.window < 0)
      throw Error{"invalid architecture options"};
    m->set_architecture(c);
    return undefined(env);
  });
}

ck::Weight* weight_slot(Model* m, int64_t layer, const std::string& name) {
  if (layer < 0) {
    if (name == "embed") return &m->embed;
    if (name == "lmHead") {
      m->tied_lm_head = false;
      return &m->lm_head;
    }
  } else if (layer < int64_t(m->layers.size())) {
    ck::LayerWeights& l = m->layers[layer];
    if (name == "qkv") return &l.qkv;
    if (name == "o") return &l.o;
    if (name == "gateUp") return &l.gate_up;
    if (name == "down") return &l.down;
  }
  throw Error{"no weight " + name + " in layer " + std::to_string(layer)};
}

// setWeight(model, layer, name, type ('F32'|'Q4'|'Q8'), rows, cols, data: Uint8Array, bias: Float32Array | null)
napi_value SetWeight(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 8);
    Model* m = a.model(0);
    ck::Weight* w = weight_slot(m, a.integer(1, "layer"), a.string(2, "name"));
    const std::string type = a.string(3, "type");
    w->type = type == "Q4" ? ck::WeightType::Q4 : type == "Q8" ? ck::WeightType::Q8 : ck::WeightType::F32;
    if (type != "Q4" && type != "Q8" && type != "F32") throw Error{"unknown weight type " + type};
    w->rows = a.integer(4, "rows");
    w->cols = a.integer(5, "cols");
    if (w->rows <= 0 || w->cols <= 0 || (w->type != ck::WeightType::F32 && w->cols % ck::kBlock))
      throw Error{"invalid weight shape"};
    size_t n;
    const uint8_t* data = a.typed<uint8_t>(6, napi_uint8_array, &n, "data");
    if (n != size_t(w->rows) * ck::row_bytes(w->type, w->cols)) throw Error{"weight data has the wrong size"};
    w->data.view(m->arena.take(n), n);
    std::memcpy(w->data.data(), data, n);
    w->bias.clear();
    if (!a.is_null(7)) {
      const float* b = a.typed<float>(7, napi_float32_array, &n, "bias");
      if (int64_t(n) != w->rows) throw Error{"bias has the wrong size"};
      w->bias.assign(b, b + n);
    }
    return undefined(env);
  });
}

// setNorm(model, layer, 'attn'|'mlp'|'q'|'k'|'postAttn'|'postMlp'|'final', Float32Array)
napi_value SetNorm(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 4);
    Model* m = a.model(0);
    const int64_t layer = a.integer(1, "layer");
    const std::string name = a.string(2, "name");
    size_t n;
    const float* v = a.typed<float>(3, napi_float32_array, &n, "norm");
    std::vector<float>* dst;
    if (name == "final") dst = &m->final_norm;
    else if (layer >= 0 && layer < int64_t(m->layers.size()) && name == "attn") dst = &m->layers[layer].attn_norm;
    else if (layer >= 0 && layer < int64_t(m->layers.size()) && name == "mlp") dst = &m->layers[layer].mlp_norm;
    else if (layer >= 0 && layer < int64_t(m->layers.size()) && name == "q") dst = &m->layers[layer].q_norm;
    else if (layer >= 0 && layer < int64_t(m->layers.size()) && name == "k") dst = &m->layers[layer].k_norm;
    else if (layer >= 0 && layer < int64_t(m->layers.size()) && name == "postAttn") dst = &m->layers[layer].post_attn_norm;
    else if (layer >= 0 && layer < int64_t(m->layers.size()) && name == "postMlp") dst = &m->layers[layer].post_mlp_norm;
    else throw Error{"no norm " + name + " in layer " + std::to_string(layer)};
    dst->assign(v, v + n);
    return undefined(env);
  });
}

// finish(model) → {kernels, threads, weightBytes}; throws when a weight is missing or misshapen.
napi_value Finish(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 1);
    Model* m = a.model(0);
    const std::string e = m->check();
    if (!e.empty()) throw Error{e};
    napi_value out;
    napi_create_object(env, &out);
    napi_set_named_property(env, out, "kernels", make_string(env, m->kernels().name));
    napi_set_named_property(env, out, "threads", make_number(env, m->pool().size()));
    napi_set_named_property(env, out, "weightBytes", make_number(env, double(m->weight_bytes())));
    return out;
  });
}

// setLora(model, slot, layer, 'qkv'|'o'|'gateUp'|'down', rank, a: Float32Array [rank, in],
// b: Float32Array [out, rank]): one projection's update of the adapter resident in `slot`.
napi_value SetLora(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 7);
    Model* m = a.model(0);
    const std::string name = a.string(3, "target");
    const ck::LoraTarget target = name == "qkv"      ? ck::kLoraQkv
                                  : name == "o"      ? ck::kLoraO
                                  : name == "gateUp" ? ck::kLoraGateUp
                                  : name == "down"   ? ck::kLoraDown
                                                     : throw Error{"no LoRA target " + name};
    const int64_t rank = a.integer(4, "rank");
    size_t na, nb;
    const float* av = a.typed<float>(5, napi_float32_array, &na, "a");
    const float* bv = a.typed<float>(6, napi_float32_array, &nb, "b");
    const auto [in, out] = m->lora_shape(target);
    if (rank <= 0 || int64_t(na) != rank * in || int64_t(nb) != out * rank)
      throw Error{"LoRA " + name + " matrices do not match rank " + std::to_string(rank) + " and the model"};
    const std::string e = m->set_lora(int(a.integer(1, "slot")), int(a.integer(2, "layer")), target, rank, av, bv);
    if (!e.empty()) throw Error{e};
    return undefined(env);
  });
}

// clearLora(model, slot): the slot's adapter is no longer resident.
napi_value ClearLora(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 2);
    a.model(0)->clear_lora(int(a.integer(1, "slot")));
    return undefined(env);
  });
}

// forward(model, tokens, positions, ctxOffset, ctxSlots, logitRows, logits, ropeLong?, lora?) —
// all Int32Array but logits (Float32Array, logitRows.length × vocab) and ropeLong (Uint8Array, a
// flag per token: rotate with the long-context frequencies; null or absent: no token does); lora
// has each token's LoRA slot or -1 (null or absent: no token has an adapter).
napi_value Forward(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 7);
    Model* m = a.model(0);
    ck::ForwardBatch b;
    size_t n, n2, n3, slots, rows, out;
    b.tokens = a.typed<int32_t>(1, napi_int32_array, &n, "tokens");
    b.positions = a.typed<int32_t>(2, napi_int32_array, &n2, "positions");
    b.ctx_offset = a.typed<int32_t>(3, napi_int32_array, &n3, "ctxOffset");
    b.ctx_slots = a.typed<int32_t>(4, napi_int32_array, &slots, "ctxSlots");
    b.logit_rows = a.typed<int32_t>(5, napi_int32_array, &rows, "logitRows");
    b.logits = a.typed<float>(6, napi_float32_array, &out, "logits");
    if (n == 0 || n2 != n || n3 != n) throw Error{"tokens, positions and ctxOffset must have the same nonzero length"};
    if (out < rows * size_t(m->config().vocab)) throw Error{"logits is too small"};
    if (!a.is_null(7)) {
      size_t flags;
      b.long_rope = a.typed<uint8_t>(7, napi_uint8_array, &flags, "ropeLong");
      if (flags != n) throw Error{"ropeLong must have a flag per token"};
    }
    if (a.size() > 8 && !a.is_null(8)) {
      size_t count;
      b.lora = a.typed<int32_t>(8, napi_int32_array, &count, "lora");
      if (count != n) throw Error{"lora must have a slot per token"};
    }
    b.n = int64_t(n);
    b.ctx_slots_len = int64_t(slots);
    b.logit_count = int64_t(rows);
    const std::string e = m->check(b);
    if (!e.empty()) throw Error{e};
    m->forward(b);
    return undefined(env);
  });
}

// reserveKv(model, slots): a KV pool of `slots` tokens (replacing any earlier one and its contents).
napi_value ReserveKv(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 2);
    const int64_t slots = a.integer(1, "slots");
    if (slots <= 0 || slots >= (int64_t(1) << 31)) throw Error{"slots must be in [1, 2^31)"};
    a.model(0)->reserve_kv(slots);
    return undefined(env);
  });
}

// releaseSlots(model, begin, end): the memory of slots [begin, end) goes back to the system.
napi_value ReleaseSlots(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 3);
    ck::KvPool* kv = a.model(0)->kv();
    if (kv) kv->release(a.integer(1, "begin"), a.integer(2, "end"));
    return undefined(env);
  });
}

// packAffine(words: Uint8Array, scales: Uint8Array, biases: Uint8Array | null, scaleType, rows,
//            cols, bits, groupSize) → {type: 'Q4'|'Q8'|'F32', data: Uint8Array}
napi_value PackAffine(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 8);
    size_t nw, ns, nb = 0;
    const uint8_t* words = a.typed<uint8_t>(0, napi_uint8_array, &nw, "words");
    const uint8_t* scales = a.typed<uint8_t>(1, napi_uint8_array, &ns, "scales");
    const uint8_t* biases = a.is_null(2) ? nullptr : a.typed<uint8_t>(2, napi_uint8_array, &nb, "biases");
    const ck::ScaleType st = scale_type(a.string(3, "scaleType"));
    const int64_t rows = a.integer(4, "rows"), cols = a.integer(5, "cols");
    const int bits = int(a.integer(6, "bits")), group = int(a.integer(7, "groupSize"));
    if (rows <= 0 || cols <= 0 || (bits != 4 && bits != 8) || group <= 0 || cols % group || (cols * bits) % 32)
      throw Error{"unsupported quantized tensor"};
    const size_t groups = size_t(rows) * size_t(cols / group);
    if (nw != size_t(rows) * size_t(cols * bits / 8) || ns != groups * scale_size(st) || (biases && nb != ns))
      throw Error{"quantized tensor parts have the wrong sizes"};
    // The words may sit at any byte offset of the file they were read from.
    std::vector<uint32_t> aligned;
    const uint32_t* w32 = reinterpret_cast<const uint32_t*>(words);
    if (reinterpret_cast<uintptr_t>(words) % 4) {
      aligned.resize(nw / 4);
      std::memcpy(aligned.data(), words, nw);
      w32 = aligned.data();
    }
    std::vector<uint8_t> blocks;
    std::string error;
    napi_value out;
    napi_create_object(env, &out);
    if (group % ck::kBlock == 0 && ck::pack_affine(w32, scales, biases, st, rows, cols, bits, group, blocks, error)) {
      napi_set_named_property(env, out, "type", make_string(env, bits == 4 ? "Q4" : "Q8"));
      napi_set_named_property(env, out, "data", new_bytes(env, blocks.data(), blocks.size()));
      return out;
    }
    std::vector<float> dense(size_t(rows) * size_t(cols));
    ck::dequant_affine(w32, scales, biases, st, rows, cols, bits, group, dense.data());
    napi_set_named_property(env, out, "type", make_string(env, "F32"));
    napi_set_named_property(env, out, "data", new_bytes(env, dense.data(), dense.size() * 4));
    return out;
  });
}

// toF32(data: Uint8Array, dtype 'F32'|'F16'|'BF16') → Float32Array
napi_value ToF32(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 2);
    size_t n;
    const uint8_t* data = a.typed<uint8_t>(0, napi_uint8_array, &n, "data");
    const ck::ScaleType t = scale_type(a.string(1, "dtype"));
    if (n % scale_size(t)) throw Error{"data length is not a multiple of the element size"};
    const size_t count = n / scale_size(t);
    void* out;
    napi_value ab, arr;
    napi_create_arraybuffer(env, count * 4, &out, &ab);
    ck::to_f32(data, t, int64_t(count), static_cast<float*>(out));
    napi_create_typedarray(env, napi_float32_array, count, ab, 0, &arr);
    return arr;
  });
}

// dequantBlocks(type 'Q4'|'Q8', rows, cols, data: Uint8Array) → Float32Array
napi_value DequantBlocks(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 4);
    const std::string type = a.string(0, "type");
    ck::Weight w;
    w.type = type == "Q4" ? ck::WeightType::Q4 : type == "Q8" ? ck::WeightType::Q8 : ck::WeightType::F32;
    w.rows = a.integer(1, "rows");
    w.cols = a.integer(2, "cols");
    if (w.rows <= 0 || w.cols <= 0 || w.cols % ck::kBlock) throw Error{"invalid shape"};
    size_t n;
    const uint8_t* data = a.typed<uint8_t>(3, napi_uint8_array, &n, "data");
    if (n != size_t(w.rows) * ck::row_bytes(w.type, w.cols)) throw Error{"data has the wrong size"};
    w.data.allocate(n);
    std::memcpy(w.data.data(), data, n);
    void* out;
    napi_value ab, arr;
    const size_t count = size_t(w.rows) * size_t(w.cols);
    napi_create_arraybuffer(env, count * 4, &out, &ab);
    const ck::KernelTable& k = ck::select_kernels();
    for (int64_t r = 0; r < w.rows; r++) k.dequant_row(w, r, static_cast<float*>(out) + r * w.cols);
    napi_create_typedarray(env, napi_float32_array, count, ab, 0, &arr);
    return arr;
  });
}

// maxLogsumexp(logits: Float32Array, rows, vocab, max: Float32Array, lse: Float32Array)
napi_value MaxLogsumexp(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 5);
    size_t n, nm, nl;
    const float* x = a.typed<float>(0, napi_float32_array, &n, "logits");
    const int64_t rows = a.integer(1, "rows"), vocab = a.integer(2, "vocab");
    float* mx = a.typed<float>(3, napi_float32_array, &nm, "max");
    float* lse = a.typed<float>(4, napi_float32_array, &nl, "lse");
    if (rows < 0 || vocab <= 0 || size_t(rows * vocab) > n || size_t(rows) > nm || size_t(rows) > nl) throw Error{"bad sizes"};
    const ck::KernelTable& k = ck::select_kernels();
    for (int64_t r = 0; r < rows; r++) k.max_logsumexp(x + r * vocab, vocab, mx + r, lse + r);
    return undefined(env);
  });
}

// kernelMatmul(variant, type, rows, cols, data: Uint8Array, x: Float32Array, M, threads,
//              iterations) → {y: Float32Array, ms} — one kernel variant's y = x·Wᵀ, timed over
// `iterations` calls (for tests and benchmarks of the kernels themselves).
napi_value KernelMatmul(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 9);
    const ck::KernelTable* k = ck::kernels_named(a.string(0, "variant").c_str());
    if (!k) throw Error{"this CPU cannot run kernel variant " + a.string(0, "variant")};
    const std::string type = a.string(1, "type");
    ck::Weight w;
    w.type = type == "Q4" ? ck::WeightType::Q4 : type == "Q8" ? ck::WeightType::Q8 : ck::WeightType::F32;
    w.rows = a.integer(2, "rows");
    w.cols = a.integer(3, "cols");
    if (w.rows <= 0 || w.cols <= 0 || (w.type != ck::WeightType::F32 && w.cols % ck::kBlock)) throw Error{"invalid shape"};
    size_t n, nx;
    const uint8_t* data = a.typed<uint8_t>(4, napi_uint8_array, &n, "data");
    if (n != size_t(w.rows) * ck::row_bytes(w.type, w.cols)) throw Error{"data has the wrong size"};
    w.data.allocate(n);
    std::memcpy(w.data.data(), data, n);
    const float* x = a.typed<float>(5, napi_float32_array, &nx, "x");
    const int64_t M = a.integer(6, "M"), threads = a.integer(7, "threads"), iterations = a.integer(8, "iterations");
    if (M <= 0 || nx != size_t(M * w.cols) || threads < 1 || threads > 256 || iterations < 1) throw Error{"invalid arguments"};
    void* out;
    napi_value ab, y;
    napi_create_arraybuffer(env, size_t(M * w.rows) * 4, &out, &ab);
    float* yp = static_cast<float*>(out);
    ck::ThreadPool pool{int(threads)};
    auto once = [&] {
      pool.parallel_for(w.rows, 16, [&](int64_t n0, int64_t n1, int) { k->matmul(w, x, M, w.cols, yp, w.rows, n0, n1, false); });
    };
    once();
    const auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < iterations; i++) once();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / double(iterations);
    napi_create_typedarray(env, napi_float32_array, size_t(M * w.rows), ab, 0, &y);
    napi_value result;
    napi_create_object(env, &result);
    napi_set_named_property(env, result, "y", y);
    napi_set_named_property(env, result, "ms", make_number(env, ms));
    return result;
  });
}

// kernelLoraExpand(variant, t: Float32Array [M, rank], M, rank, bt: Float32Array [rank, out], out,
// begin: Int32Array [rank], end: Int32Array [rank], y: Float32Array [M, out], threads): one variant's
// lora_expand over all outputs, y updated in place (tests).
napi_value KernelLoraExpand(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 10);
    const ck::KernelTable* k = ck::kernels_named(a.string(0, "variant").c_str());
    if (!k) throw Error{"this CPU cannot run kernel variant " + a.string(0, "variant")};
    size_t nt, nb, nbegin, nend, ny;
    const float* t = a.typed<float>(1, napi_float32_array, &nt, "t");
    const int64_t M = a.integer(2, "M"), rank = a.integer(3, "rank");
    const float* bt = a.typed<float>(4, napi_float32_array, &nb, "bt");
    const int64_t out = a.integer(5, "out");
    const int32_t* begin = a.typed<int32_t>(6, napi_int32_array, &nbegin, "begin");
    const int32_t* end = a.typed<int32_t>(7, napi_int32_array, &nend, "end");
    float* y = a.typed<float>(8, napi_float32_array, &ny, "y");
    const int64_t threads = a.integer(9, "threads");
    if (M <= 0 || rank <= 0 || out <= 0 || nt != size_t(M * rank) || nb != size_t(rank * out) || nbegin != size_t(rank) ||
        nend != size_t(rank) || ny != size_t(M * out) || threads < 1 || threads > 256)
      throw Error{"invalid arguments"};
    for (int64_t r = 0; r < rank; r++)
      if (begin[r] < 0 || end[r] > out) throw Error{"a column range is outside the outputs"};
    ck::ThreadPool pool{int(threads)};
    pool.parallel_for(out, 16, [&](int64_t n0, int64_t n1, int) { k->lora_expand(t, M, rank, rank, bt, out, begin, end, y, out, n0, n1); });
    return undefined(env);
  });
}

// probeMachine(threads) → {readGBs, fmaGflops}: what this machine does at best (benchmarks).
napi_value ProbeMachine(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info, 1);
    const int64_t threads = a.integer(0, "threads");
    if (threads < 1 || threads > 256) throw Error{"threads must be in [1, 256]"};
    napi_value out;
    napi_create_object(env, &out);
    napi_set_named_property(env, out, "readGBs", make_number(env, ck::read_bandwidth_gbs(int64_t(512) << 20, int(threads))));
    napi_set_named_property(env, out, "fmaGflops", make_number(env, ck::fma_peak_gflops(int(threads))));
    return out;
  });
}

napi_value Init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"createModel", nullptr, CreateModel, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setArchitecture", nullptr, SetArchitecture, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setWeight", nullptr, SetWeight, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setNorm", nullptr, SetNorm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"finish", nullptr, Finish, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"forward", nullptr, Forward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setLora", nullptr, SetLora, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"clearLora", nullptr, ClearLora, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reserveKv", nullptr, ReserveKv, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"releaseSlots", nullptr, ReleaseSlots, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"packAffine", nullptr, PackAffine, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"toF32", nullptr, ToF32, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"probeMachine", nullptr, ProbeMachine, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"kernelMatmul", nullptr, KernelMatmul, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"kernelLoraExpand", nullptr, KernelLoraExpand, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"dequantBlocks", nullptr, DequantBlocks, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxLogsumexp", nullptr, MaxLogsumexp, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  ck::register_sampler_functions(env, exports);
  napi_value kernels = make_string(env, ck::select_kernels().name);
  napi_set_named_property(env, exports, "kernels", kernels);
  napi_value variants;
  napi_create_array(env, &variants);
  uint32_t count = 0;
  for (const char* name : {"generic", "avx2", "avx512"}) {
    if (ck::kernels_named(name)) napi_set_element(env, variants, count++, make_string(env, name));
  }
  napi_set_named_property(env, exports, "kernelVariants", variants);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
