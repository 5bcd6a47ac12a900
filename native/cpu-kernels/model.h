// A decoder-only transformer of the Llama family (Llama 2/3, SmolLM2, Mistral, Qwen2) run on the
// CPU with the kernels of kernels.h: embeddings, N blocks of (RMSNorm → attention → residual,
// RMSNorm → SwiGLU MLP → residual), final norm and LM head. Keys and values live in a KvPool;
// every token brings its own position, so sequences of any lengths batch together and a cached
// prefix is used where it lies.
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
  std::vector<double> inv_freq;  // head_dim / 2 rotary inverse frequencies
  int threads = 1;
  // How long idle worker threads spin before they sleep (see ThreadPool).
  int spin_us = 200;
};

struct LayerWeights {
  std::vector<float> attn_norm, mlp_norm;
  Weight qkv, o, gate_up, down;
};

// One forward pass: n tokens of one or more sequences.
struct ForwardBatch {
  int64_t n = 0;
  const int32_t* tokens = nullptr;
  // Position of each token in its sequence.
  const int32_t* positions = nullptr;
  // Where the slot list of the token's sequence starts in ctx_slots; the token sees the slots of
  // positions 0 … its own, and its keys/values are written to the slot of its own position.
  const int32_t* ctx_offset = nullptr;
  const int32_t* ctx_slots = nullptr;
  int64_t ctx_slots_len = 0;
  // Tokens whose next-token logits are wanted, and where they go ([count][vocab]).
  const int32_t* logit_rows = nullptr;
  int64_t logit_count = 0;
  float* logits = nullptr;
};

class Model {
 public:
  explicit Model(ModelConfig config);

  const ModelConfig& config() const { return config_; }
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

 private:
  void linear(const Weight& w, const float* x, int64_t M, float* y, bool accumulate);
  void attention(int layer, const ForwardBatch& b);

  ModelConfig config_;
  const KernelTable& kernels_;
  ThreadPool pool_;
  std::unique_ptr<KvPool> kv_;
  // Activations, sized for the largest batch seen.
  std::vector<float> x_, h_, qkv_, attn_, gu_, act_, cos_, sin_, sel_;
  std::vector<std::vector<float>> scratch_;
  std::vector<int32_t> lens_;
  std::vector<std::pair<int64_t, int>> attention_blocks_;
  // Most tokens of one sequence attended as one block.
  static constexpr int kQueryBlock = 16;
};

}  // namespace ck
