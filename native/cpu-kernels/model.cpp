#include "model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace ck {

Model::Model(ModelConfig config)
    : config_(std::move(config)),
      kernels_(select_kernels()),
      pool_(config_.threads, config_.spin_us) {
  layers.resize(config_.layers);
  scratch_.resize(pool_.size());
}

void Model::set_architecture(const ModelConfig& c) {
  config_.embed_scale = c.embed_scale;
  config_.attn_scale = c.attn_scale;
  config_.attn_softcap = c.attn_softcap;
  config_.final_softcap = c.final_softcap;
  config_.gelu = c.gelu;
  config_.window = c.window;
  config_.sliding = c.sliding;
  config_.inv_freq_local = c.inv_freq_local;
}

static std::string shape_error(const char* name, int layer, const Weight& w, int64_t rows, int64_t cols) {
  if (w.rows == rows && w.cols == cols && !w.data.empty() && w.data.size() == size_t(rows) * row_bytes(w.type, cols) &&
      (w.bias.empty() || int64_t(w.bias.size()) == rows))
    return "";
  return std::string(name) + (layer >= 0 ? " of layer " + std::to_string(layer) : "") + " is [" +
         std::to_string(w.rows) + ", " + std::to_string(w.cols) + "], expected [" + std::to_string(rows) + ", " +
         std::to_string(cols) + "]";
}

std::string Model::check() const {
  const ModelConfig& c = config_;
  const int64_t q = int64_t(c.heads) * c.head_dim, kv = int64_t(c.kv_heads) * c.head_dim;
  if (c.head_dim % 2 || c.inv_freq.empty() || int(c.inv_freq.size()) > c.head_dim / 2)
    return "the rotary frequencies do not match head_dim";
  if (!(c.rope_scale > 0)) return "the rotary scale must be positive";
  if (!c.inv_freq_long.empty() && c.inv_freq_long.size() != c.inv_freq.size())
    return "the long-context rotary frequencies do not match the others";
  if (c.heads % c.kv_heads) return "heads must be a multiple of kv_heads";
  if (!c.inv_freq_local.empty() && c.inv_freq_local.size() != c.inv_freq.size())
    return "the local rotary frequencies do not match the global ones";
  if (!c.sliding.empty() && (int(c.sliding.size()) != c.layers || c.window <= 0))
    return "sliding-window layers need one flag a layer and a positive window";
  std::string e = shape_error("embed", -1, embed, c.vocab, c.hidden);
  if (e.empty() && !tied_lm_head) e = shape_error("lm_head", -1, lm_head, c.vocab, c.hidden);
  if (e.empty() && int(final_norm.size()) != c.hidden) e = "final norm has the wrong size";
  for (int l = 0; e.empty() && l < c.layers; l++) {
    const LayerWeights& w = layers[l];
    e = shape_error("qkv", l, w.qkv, q + 2 * kv, c.hidden);
    if (e.empty()) e = shape_error("o", l, w.o, c.hidden, q);
    if (e.empty()) e = shape_error("gate_up", l, w.gate_up, 2 * int64_t(c.intermediate), c.hidden);
    if (e.empty()) e = shape_error("down", l, w.down, c.hidden, c.intermediate);
    if (e.empty() && (int(w.attn_norm.size()) != c.hidden || int(w.mlp_norm.size()) != c.hidden))
      e = "norm of layer " + std::to_string(l) + " has the wrong size";
    const bool qk = !layers[0].q_norm.empty();
    if (e.empty() && (w.q_norm.empty() != !qk || w.k_norm.empty() != !qk))
      e = "q/k norms of layer " + std::to_string(l) + " are missing (other layers have them)";
    if (e.empty() && qk && (int(w.q_norm.size()) != c.head_dim || int(w.k_norm.size()) != c.head_dim))
      e = "q/k norm of layer " + std::to_string(l) + " has the wrong size";
    const bool post = !layers[0].post_attn_norm.empty();
    if (e.empty() && (int(w.post_attn_norm.size()) != (post ? c.hidden : 0) || int(w.post_mlp_norm.size()) != (post ? c.hidden : 0)))
      e = "post-attention/MLP norms of layer " + std::to_string(l) + " are missing or have the wrong size";
  }
  return e;
}

void Model::reserve_kv(int64_t slots) {
  kv_.reset();
  kv_ = std::make_unique<KvPool>(config_.layers, int64_t(config_.kv_heads) * config_.head_dim, slots);
}

std::string Model::check(const ForwardBatch& b) const {
  if (!kv_) return "no KV pool reserved";
  const int64_t cap = kv_->capacity();
  if (b.long_rope && config_.inv_freq_long.empty()) return "tokens ask for long-context RoPE the model does not have";
  for (int64_t i = 0; i < b.n; i++) {
    if (b.tokens[i] < 0 || b.tokens[i] >= config_.vocab) return "token id " + std::to_string(b.tokens[i]) + " is outside the vocabulary";
    if (b.positions[i] < 0 || b.ctx_offset[i] < 0 || int64_t(b.ctx_offset[i]) + b.positions[i] >= b.ctx_slots_len)
      return "token " + std::to_string(i) + " has no slot for its position";
  }
  for (int64_t s = 0; s < b.ctx_slots_len; s++)
    if (b.ctx_slots[s] < 0 || b.ctx_slots[s] >= cap) return "slot " + std::to_string(b.ctx_slots[s]) + " is outside the KV pool";
  for (int64_t r = 0; r < b.logit_count; r++)
    if (b.logit_rows[r] < 0 || b.logit_rows[r] >= b.n) return "a logits row is outside the batch";
  if (b.lora)
    for (int64_t i = 0; i < b.n; i++) {
      const int32_t s = b.lora[i];
      if (s != -1 && (s < 0 || s >= int32_t(loras_.size()) || !loras_[s].loaded))
        return "token " + std::to_string(i) + " asks for LoRA slot " + std::to_string(s) + ", which holds no adapter";
    }
  return "";
}

std::pair<int64_t, int64_t> Model::lora_shape(LoraTarget target) const {
  const ModelConfig& c = config_;
  const int64_t q = int64_t(c.heads) * c.head_dim, kv = int64_t(c.kv_heads) * c.head_dim;
  switch (target) {
    case kLoraQkv: return {c.hidden, q + 2 * kv};
    case kLoraO: return {q, c.hidden};
    case kLoraGateUp: return {c.hidden, 2 * int64_t(c.intermediate)};
    default: return {c.intermediate, c.hidden};
  }
}

std::string Model::set_lora(int slot, int layer, LoraTarget target, int64_t rank, const float* a, const float* b) {
  if (slot < 0 || slot > 4096) return "LoRA slot " + std::to_string(slot) + " is out of range";
  if (layer < 0 || layer >= config_.layers) return "layer " + std::to_string(layer) + " is outside the model";
  if (target < 0 || target >= kLoraTargets) return "unknown LoRA target";
  if (rank <= 0) return "a LoRA rank must be positive";
  if (int(loras_.size()) <= slot) loras_.resize(slot + 1);
  LoraSlot& s = loras_[slot];
  if (!s.loaded) {
    s.updates.clear();
    s.updates.resize(size_t(config_.layers) * kLoraTargets);
  }
  s.loaded = true;
  const auto [in, out] = lora_shape(target);
  LoraUpdate& u = s.updates[size_t(layer) * kLoraTargets + target];
  u.a.type = WeightType::F32;
  u.a.rows = rank;
  u.a.cols = in;
  u.a.data.allocate(size_t(rank * in) * 4);
  std::memcpy(u.a.data.data(), a, size_t(rank * in) * 4);
  u.bt.assign(size_t(rank * out), 0.0f);
  u.begin.assign(rank, int32_t(out));
  u.end.assign(rank, 0);
  for (int64_t o = 0; o < out; o++)
    for (int64_t k = 0; k < rank; k++) {
      const float v = b[o * rank + k];
      u.bt[k * out + o] = v;
      if (v != 0.0f) {
        u.begin[k] = std::min<int32_t>(u.begin[k], int32_t(o));
        u.end[k] = int32_t(o + 1);
      }
    }
  return "";
}

void Model::clear_lora(int slot) {
  if (slot >= 0 && slot < int(loras_.size())) loras_[slot] = LoraSlot{};
}

size_t Model::lora_bytes() const {
  size_t n = 0;
  for (const LoraSlot& s : loras_)
    for (const LoraUpdate& u : s.updates) n += u.bytes();
  return n;
}

void Model::apply_lora(int layer, LoraTarget target, const float* x, int64_t ldx, float* y, int64_t ldy) {
  if (lora_runs_.empty()) return;
  auto update = [&](const LoraRun& r) -> const LoraUpdate& {
    return loras_[r.slot].updates[size_t(layer) * kLoraTargets + target];
  };
  int64_t ranks = 0;
  for (const LoraRun& r : lora_runs_) ranks = std::max(ranks, update(r).rank());
  if (ranks == 0) return;
  const int64_t out = lora_shape(target).second;
  int64_t n = 0;
  for (const LoraRun& r : lora_runs_) n = std::max(n, r.first + r.count);
  if (int64_t(lora_t_.size()) < n * ranks) lora_t_.resize(n * ranks);
  float* t = lora_t_.data();
  const KernelTable& k = kernels_;
  // t = x·Aᵀ for each run (few columns: split over them), then y += t·Bᵀ (split over outputs).
  pool_.parallel_for(ranks, 4, [&](int64_t n0, int64_t n1, int) {
    for (const LoraRun& r : lora_runs_) {
      const Weight& a = update(r).a;
      const int64_t end = std::min(n1, a.rows);
      if (n0 < end) k.matmul(a, x + r.first * ldx, r.count, ldx, t + r.first * ranks, ranks, n0, end, false);
    }
  });
  pool_.parallel_for(out, 64, [&](int64_t n0, int64_t n1, int) {
    for (const LoraRun& r : lora_runs_) {
      const LoraUpdate& u = update(r);
      if (u.rank())
        k.lora_expand(t + r.first * ranks, r.count, ranks, u.rank(), u.bt.data(), out, u.begin.data(), u.end.data(),
                      y + r.first * ldy, ldy, n0, n1);
    }
  });
}

size_t Model::weight_bytes() const {
  size_t n = embed.bytes() + (tied_lm_head ? 0 : lm_head.bytes()) + final_norm.size() * 4;
  for (const LayerWeights& l : layers)
    n += l.qkv.bytes() + l.o.bytes() + l.gate_up.bytes() + l.down.bytes() +
         (l.attn_norm.size() + l.mlp_norm.size() + l.q_norm.size() + l.k_norm.size() + l.post_attn_norm.size() +
          l.post_mlp_norm.size()) *
             4;
  return n;
}

// y = x·Wᵀ (+ bias) (+ y), split over threads by output columns.
void Model::linear(const Weight& w, const float* x, int64_t M, float* y, bool accumulate) {
  const KernelTable& k = kernels_;
  const int64_t ld_x = w.cols, ld_y = w.rows;
  pool_.parallel_for(w.rows, 16, [&](int64_t n0, int64_t n1, int) {
    k.matmul(w, x, M, ld_x, y, ld_y, n0, n1, accumulate);
    if (!w.bias.empty())
      for (int64_t m = 0; m < M; m++)
        for (int64_t n = n0; n < n1; n++) y[m * ld_y + n] += w.bias[n];
  });
}

void Model::attention(int layer, const ForwardBatch& b) {
  const ModelConfig& c = config_;
  const int64_t qkv_cols = int64_t(c.heads + 2 * c.kv_heads) * c.head_dim;
  const int64_t row = kv_->row_floats();
  const int groups = c.heads / c.kv_heads, half = int(c.inv_freq.size());
  float* kbase = kv_->keys(layer);
  float* vbase = kv_->values(layer);
  const std::vector<float>& q_norm = layers[layer].q_norm;
  const std::vector<float>& k_norm = layers[layer].k_norm;
  const bool sliding = !c.sliding.empty() && c.sliding[layer];
  const bool local_rope = sliding && !c.inv_freq_local.empty();
  const std::vector<float>& cos_table = local_rope ? cos_local_ : cos_;
  const std::vector<float>& sin_table = local_rope ? sin_local_ : sin_;
  // Normalize (Qwen3) and rotate q and k, and store every token's keys and values first: tokens of
  // one prompt chunk attend to each other.
  pool_.parallel_for(b.n, 1, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) {
      float* q = qkv_.data() + i * qkv_cols;
      float* k = q + int64_t(c.heads) * c.head_dim;
      const float* v = k + row;
      const float* cs = cos_table.data() + i * half;
      const float* sn = sin_table.data() + i * half;
      if (!q_norm.empty()) {
        for (int h = 0; h < c.heads; h++) {
          float* qh = q + int64_t(h) * c.head_dim;
          kernels_.rmsnorm(qh, q_norm.data(), c.eps, c.head_dim, qh);
        }
        for (int h = 0; h < c.kv_heads; h++) {
          float* kh = k + int64_t(h) * c.head_dim;
          kernels_.rmsnorm(kh, k_norm.data(), c.eps, c.head_dim, kh);
        }
      }
      kernels_.rope(q, c.heads, c.head_dim, half, cs, sn);
      kernels_.rope(k, c.kv_heads, c.head_dim, half, cs, sn);
      const int64_t slot = b.ctx_slots[b.ctx_offset[i] + b.positions[i]];
      std::copy(k, k + row, kbase + slot * row);
      std::copy(v, v + row, vbase + slot * row);
    }
  });
  // Tokens of one prompt chunk attend as a block: each key and value is read once for all of
  // them (a chunk of T tokens would otherwise read its context T times).
  std::vector<std::pair<int64_t, int>>& blocks = attention_blocks_;
  blocks.clear();
  for (int64_t i = 0; i < b.n;) {
    int n = 1;
    while (i + n < b.n && n < kQueryBlock && b.ctx_offset[i + n] == b.ctx_offset[i] && b.positions[i + n] == b.positions[i] + n) n++;
    blocks.emplace_back(i, n);
    i += n;
  }
  int64_t longest = 0;
  for (int64_t i = 0; i < b.n; i++) longest = std::max<int64_t>(longest, b.positions[i] + 1);
  // Score rows are padded to whole SIMD blocks of keys (at most 16).
  const int64_t padded = (longest + 15) / 16 * 16;
  for (auto& s : scratch_)
    if (int64_t(s.size()) < int64_t(kQueryBlock) * groups * padded) s.resize(int64_t(kQueryBlock) * groups * padded);
  // Token i sees positions [starts_, lens_): all before it, or on a sliding-window layer the last
  // `window`. Each block reads its keys from about the first one its first token sees, so a
  // window costs little more than it covers; starts_ and lens_ are relative to that base. The
  // base is a multiple of 16 so every key keeps its SIMD lane (a multiple of every variant's
  // width), and a token's scores do not depend on which block it was computed in.
  auto block_base = [&](int64_t i) { return sliding ? std::max(0, b.positions[i] + 1 - c.window) / 16 * 16 : 0; };
  lens_.resize(b.n);
  starts_.resize(b.n);
  for (auto [i, n] : blocks) {
    const int32_t base = block_base(i);
    for (int64_t j = i; j < i + n; j++) {
      lens_[j] = b.positions[j] + 1 - base;
      starts_[j] = (sliding ? std::max(0, b.positions[j] + 1 - c.window) : 0) - base;
    }
  }
  const float scale = c.attn_scale > 0 ? c.attn_scale : 1.0f / std::sqrt(float(c.head_dim));
  const int64_t q_cols = int64_t(c.heads) * c.head_dim;
  const int64_t tasks = int64_t(blocks.size()) * c.kv_heads;
  pool_.parallel_for(tasks, 1, [&](int64_t t0, int64_t t1, int thread) {
    for (int64_t t = t0; t < t1; t++) {
      const auto [i, n] = blocks[t / c.kv_heads];
      const int hk = int(t % c.kv_heads);
      const float* q = qkv_.data() + i * qkv_cols + int64_t(hk) * groups * c.head_dim;
      float* out = attn_.data() + i * q_cols + int64_t(hk) * groups * c.head_dim;
      const int32_t base = block_base(i);
      kernels_.attend(q, qkv_cols, n, sliding ? starts_.data() + i : nullptr, lens_.data() + i, groups, c.head_dim,
                      kbase + hk * c.head_dim, vbase + hk * c.head_dim, row, b.ctx_slots + b.ctx_offset[i] + base, scale,
                      c.attn_softcap, out, q_cols, scratch_[thread].data());
    }
  });
}

void Model::forward(const ForwardBatch& b) {
  const ModelConfig& c = config_;
  const int64_t N = b.n, H = c.hidden, half = int64_t(c.inv_freq.size());
  const int64_t qkv_cols = int64_t(c.heads + 2 * c.kv_heads) * c.head_dim;
  const int64_t q_cols = int64_t(c.heads) * c.head_dim, I = c.intermediate;
  auto fit = [](std::vector<float>& v, int64_t n) {
    if (int64_t(v.size()) < n) v.resize(n);
  };
  fit(x_, N * H);
  fit(h_, N * H);
  fit(qkv_, N * qkv_cols);
  fit(attn_, N * q_cols);
  fit(gu_, N * 2 * I);
  fit(act_, N * I);
  fit(cos_, N * half);
  fit(sin_, N * half);
  const bool local_rope = !c.inv_freq_local.empty();
  if (local_rope) {
    fit(cos_local_, N * half);
    fit(sin_local_, N * half);
  }
  const KernelTable& k = kernels_;

  pool_.parallel_for(N, 1, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) {
      k.dequant_row(embed, b.tokens[i], x_.data() + i * H);
      if (c.embed_scale != 1.0f)
        for (int64_t j = 0; j < H; j++) x_[i * H + j] *= c.embed_scale;
      // Angles in double, rounded once, as the reference computes its tables.
      const std::vector<double>& inv = b.long_rope && b.long_rope[i] ? c.inv_freq_long : c.inv_freq;
      for (int64_t j = 0; j < half; j++) {
        const double a = double(b.positions[i]) * inv[j];
        cos_[i * half + j] = float(std::cos(a) * c.rope_scale);
        sin_[i * half + j] = float(std::sin(a) * c.rope_scale);
        if (local_rope) {
          const double al = double(b.positions[i]) * c.inv_freq_local[j];
          cos_local_[i * half + j] = float(std::cos(al));
          sin_local_[i * half + j] = float(std::sin(al));
        }
      }
    }
  });
  auto norm_rows = [&](const std::vector<float>& w) {
    pool_.parallel_for(N, 1, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; i++) k.rmsnorm(x_.data() + i * H, w.data(), c.eps, H, h_.data() + i * H);
    });
  };
  lora_runs_.clear();
  if (b.lora)
    for (int64_t i = 0; i < N;) {
      int64_t j = i + 1;
      while (j < N && b.lora[j] == b.lora[i]) j++;
      if (b.lora[i] >= 0) lora_runs_.push_back({i, j - i, b.lora[i]});
      i = j;
    }
  // One adapter's runs one after another: its matrices are read from memory once a step, then from cache.
  std::stable_sort(lora_runs_.begin(), lora_runs_.end(), [](const LoraRun& x, const LoraRun& y) { return x.slot < y.slot; });
  // y = x·Wᵀ (and the LoRA update) added to the residual x_, through a norm first when the layer
  // has one there (Gemma).
  auto add_residual = [&](int l, LoraTarget target, const Weight& weight, const float* in, int64_t ld_in,
                          const std::vector<float>& post_norm) {
    if (post_norm.empty()) {
      linear(weight, in, N, x_.data(), true);
      apply_lora(l, target, in, ld_in, x_.data(), H);
      return;
    }
    linear(weight, in, N, h_.data(), false);
    apply_lora(l, target, in, ld_in, h_.data(), H);
    pool_.parallel_for(N, 1, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; i++) {
        float* h = h_.data() + i * H;
        k.rmsnorm(h, post_norm.data(), c.eps, H, h);
        float* x = x_.data() + i * H;
        for (int64_t j = 0; j < H; j++) x[j] += h[j];
      }
    });
  };
  const auto glu = c.gelu ? k.geglu : k.swiglu;
  for (int l = 0; l < c.layers; l++) {
    const LayerWeights& w = layers[l];
    norm_rows(w.attn_norm);
    linear(w.qkv, h_.data(), N, qkv_.data(), false);
    apply_lora(l, kLoraQkv, h_.data(), H, qkv_.data(), qkv_cols);
    attention(l, b);
    add_residual(l, kLoraO, w.o, attn_.data(), q_cols, w.post_attn_norm);
    norm_rows(w.mlp_norm);
    linear(w.gate_up, h_.data(), N, gu_.data(), false);
    apply_lora(l, kLoraGateUp, h_.data(), H, gu_.data(), 2 * I);
    pool_.parallel_for(N, 1, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; i++) glu(gu_.data() + i * 2 * I, gu_.data() + i * 2 * I + I, I, act_.data() + i * I);
    });
    add_residual(l, kLoraDown, w.down, act_.data(), I, w.post_mlp_norm);
  }
  if (b.logit_count == 0) return;
  fit(sel_, b.logit_count * H);
  for (int64_t r = 0; r < b.logit_count; r++)
    k.rmsnorm(x_.data() + int64_t(b.logit_rows[r]) * H, final_norm.data(), c.eps, H, sel_.data() + r * H);
  linear(tied_lm_head ? embed : lm_head, sel_.data(), b.logit_count, b.logits, false);
  if (c.final_softcap > 0) {
    const float cap = c.final_softcap;
    pool_.parallel_for(b.logit_count, 1, [&](int64_t r0, int64_t r1, int) {
      for (float *p = b.logits + r0 * c.vocab, *end = b.logits + r1 * c.vocab; p < end; p++) *p = std::tanh(*p / cap) * cap;
    });
  }
}

}  // namespace ck
