// A decoder-only transformer of the Llama family (Llama 2/3, SmolLM2, Mistral, Qwen2, Qwen3,
// Phi-3, Gemma 2/3) run on the CPU with the kernels of kernels.h: embeddings, N blocks of (RMSNorm →
// attention → residual, RMSNorm → SwiGLU MLP → residual), final norm and LM head. Qwen2's q/k/v
// biases ride on the qkv weight; Qwen3's per-head q/k norms are applied before RoPE when a layer
// has them. Gemma adds norms after attention and MLP, GeGLU, scaled embeddings, soft-capping and
// sliding-window layers. Keys and values live in a KvPool; every token brings its own position, so sequences
// of any lengths batch together and a cached prefix is used where it lies.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels.h"
#include "kv-pool.h"
#include "buffer.h"
#include "thread-pool.h"
#include "weight.h"

namespace ck {

struct ModelConfig {
  int hidden = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, intermediate = 0, vocab = 0;
  float eps = 1e-5f;
  // Rotary inverse frequencies, one per rotated pair: head_dim / 2 of them, or fewer when only the
  // first 2 · inv_freq.size() dimensions of each head rotate (partial rotary, Phi-4-mini).
  std::vector<double> inv_freq;
  // LongRoPE: the frequencies of sequences that may grow past the original context (empty: none);
  // the tokens ForwardBatch::long_rope marks rotate with them. cos and sin are multiplied by
  // rope_scale (its attention factor) either way.
  std::vector<double> inv_freq_long;
  double rope_scale = 1.0;
  // Gemma 2/3 (set_architecture; the defaults are Llama's). Embeddings are multiplied by
  // embed_scale; attention scores by attn_scale (0: 1/sqrt(head_dim)), then soft-capped,
  // tanh(s / cap) · cap, when attn_softcap > 0, as are the logits with final_softcap.
  float embed_scale = 1.0f, attn_scale = 0.0f, attn_softcap = 0.0f, final_softcap = 0.0f;
  // The MLP's activation: gelu (tanh approximation) instead of silu.
  bool gelu = false;
  // Layers marked here attend only to the last `window` positions (theirs included) and rotate
  // with inv_freq_local when it is set.
  int window = 0;
  std::vector<uint8_t> sliding;
  std::vector<double> inv_freq_local;
  int threads = 1;
  // How long idle worker threads spin before they sleep (see ThreadPool).
  int spin_us = 200;
};

struct LayerWeights {
  std::vector<float> attn_norm, mlp_norm;
  // RMSNorm weights [head_dim] over each head of q and of k before RoPE (Qwen3); empty: none.
  std::vector<float> q_norm, k_norm;
  // Norms of the attention and MLP outputs before each residual add (Gemma); empty: none.
  std::vector<float> post_attn_norm, post_mlp_norm;
  Weight qkv, o, gate_up, down;
};

// The fused projections a LoRA adapter may change (each row of one is (x·Aᵀ)·Bᵀ more).
enum LoraTarget : int { kLoraQkv = 0, kLoraO = 1, kLoraGateUp = 2, kLoraDown = 3, kLoraTargets = 4 };

// One adapter's low-rank update of one fused projection: y += (x·Aᵀ)·Bᵀ with A [R, in] and
// B [out, R], the adapter's scale folded into B. R stacks the ranks of the projections it adapts
// (q, k and v of the qkv projection; B is zero outside each one's block). Empty: not adapted.
struct LoraUpdate {
  Weight a;
  // B transposed, [R][out], and per row the columns [begin, end) outside which it is zero (the
  // block of the projection that rank belongs to), so the zeros are never read.
  std::vector<float> bt;
  std::vector<int32_t> begin, end;
  int64_t rank() const { return a.rows; }
  size_t bytes() const { return a.bytes() + bt.size() * 4 + (begin.size() + end.size()) * 4; }
};

// A resident adapter: its updates per layer, by LoraTarget.
struct LoraSlot {
  bool loaded = false;
  std::vector<LoraUpdate> updates;  // layers × kLoraTargets
};

// One forward pass: n tokens of one or more sequences.
struct ForwardBatch {
  int64_t n = 0;
  const int32_t* tokens = nullptr;
  // Position of each token in its sequence.
  const int32_t* positions = nullptr;
  // Per token, nonzero: rotate with inv_freq_long (its sequence uses LongRoPE's long factors); null: none does.
  const uint8_t* long_rope = nullptr;
  // Where the slot list of the token's sequence starts in ctx_slots; the token sees the slots of
  // positions 0 … its own, and its keys/values are written to the slot of its own position.
  const int32_t* ctx_offset = nullptr;
  const int32_t* ctx_slots = nullptr;
  int64_t ctx_slots_len = 0;
  // Tokens whose next-token logits are wanted, and where they go ([count][vocab]).
  const int32_t* logit_rows = nullptr;
  int64_t logit_count = 0;
  float* logits = nullptr;
  // Per token, the LoRA slot its sequence generates with, or -1 for the base model; null: none has one.
  const int32_t* lora = nullptr;
};

class Model {
 public:
  explicit Model(ModelConfig config);

  const ModelConfig& config() const { return config_; }
  // The Gemma fields of the configuration (see ModelConfig), before any weight is set.
  void set_architecture(const ModelConfig& c);
  const KernelTable& kernels() const { return kernels_; }
  // The KV pool, created (or replaced, dropping its contents) by reserve_kv.
  KvPool* kv() { return kv_.get(); }
  void reserve_kv(int64_t slots);
  ThreadPool& pool() { return pool_; }

  // Where the weights' bytes live (set_weight_bytes hands out parts of it).
  WeightArena arena;
  std::vector<LayerWeights> layers;
  Weight embed, lm_head;
  bool tied_lm_head = true;
  std::vector<float> final_norm;

  // Checks every weight is present with the configured shapes; returns a message or "".
  std::string check() const;
  // Checks a batch (token ids, slots, positions) against the model; returns a message or "".
  std::string check(const ForwardBatch& b) const;
  void forward(const ForwardBatch& b);
  size_t weight_bytes() const;

  // Puts an adapter's update of one projection of one layer in `slot` (marking the slot loaded);
  // a: [rank, in], b: [out, rank] f32. Returns a message or "".
  std::string set_lora(int slot, int layer, LoraTarget target, int64_t rank, const float* a, const float* b);
  // In/out sizes of a fused projection (what a, b of set_lora must match).
  std::pair<int64_t, int64_t> lora_shape(LoraTarget target) const;
  // Empties a slot (its adapter is no longer resident).
  void clear_lora(int slot);
  size_t lora_bytes() const;

 private:
  void linear(const Weight& w, const float* x, int64_t M, float* y, bool accumulate);
  void attention(int layer, const ForwardBatch& b);
  // Adds the LoRA updates of `target` in `layer` to y for the runs of tokens that have an adapter.
  void apply_lora(int layer, LoraTarget target, const float* x, int64_t ldx, float* y, int64_t ldy);

  ModelConfig config_;
  const KernelTable& kernels_;
  ThreadPool pool_;
  std::unique_ptr<KvPool> kv_;
  // Activations, sized for the largest batch seen.
  std::vector<float> x_, h_, qkv_, attn_, gu_, act_, cos_, sin_, cos_local_, sin_local_, sel_;
  std::vector<std::vector<float>> scratch_;
  std::vector<int32_t> lens_, starts_;
  std::vector<std::pair<int64_t, int>> attention_blocks_;
  std::vector<LoraSlot> loras_;
  // This pass's runs of consecutive tokens with the same adapter: (first token, count, slot).
  struct LoraRun {
    int64_t first, count;
    int slot;
  };
  std::vector<LoraRun> lora_runs_;
  std::vector<float> lora_t_;
  // Most tokens of one sequence attended as one block.
  static constexpr int kQueryBlock = 16;
};

}  // namespace ck
