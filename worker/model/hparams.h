#pragma once
#include <cstdint>
#include <string>

#include "worker/gguf/gguf_file.h"

namespace clusterctl::model {

// The most experts per layer the engine routes among (Qwen3-MoE has 128, DeepSeek-V3 256).
constexpr uint32_t kMaxExperts = 512;

// The hyperparameters of a decoder-only transformer, read from GGUF metadata.
// Missing optional keys take llama.cpp's defaults.
struct HParams {
  std::string arch;
  std::string name;
  uint32_t n_embd = 0;
  uint32_t n_layer = 0;
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  uint32_t n_ff = 0;           // the FFN width that is split: of each expert in a mixture-of-experts model
  uint32_t n_expert = 0;       // experts per layer (0: a dense FFN)
  uint32_t n_expert_used = 0;  // experts each token is routed to
  uint32_t n_vocab = 0;
  uint32_t n_ctx_train = 0;
  uint32_t head_dim = 0;  // key_length if present, else n_embd / n_head (deepseek2: the value head)
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  uint32_t rope_dim = 0;  // rope.dimension_count, default head_dim
  // RoPE frequency scaling (rope.scaling.*): "linear" divides positions by factor; "llama3"
  // (or low/high frequency factors present) rescales frequencies by wavelength, as Llama 3.1+.
  std::string rope_scaling_type;
  float rope_scaling_factor = 1.0f;
  uint32_t rope_scaling_orig_ctx = 0;
  float rope_low_freq_factor = 0.0f;
  float rope_high_freq_factor = 0.0f;
  float rope_attn_factor = 1.0f;   // rope.scaling.attn_factor (YaRN's magnitude scale)
  float rope_yarn_log_mul = 0.0f;  // rope.scaling.yarn_log_multiplier / 0.1 (DeepSeek's mscale_all_dim; 0: absent)
  // Mixtures of experts: how the router's scores become the chosen experts and their weights.
  enum class Gating : uint8_t { Softmax, Sigmoid };
  Gating expert_gating = Gating::Softmax;
  bool expert_weights_norm = true;    // the chosen experts' weights rescaled to sum to 1
  float expert_weights_scale = 0.0f;  // then multiplied by this (0 or 1: not)
  uint32_t n_expert_shared = 0;       // shared experts beside the routed ones, of n_ff each
  uint32_t n_expert_groups = 0;       // group-limited routing: experts in this many groups,
  uint32_t n_group_used = 0;          //   of which the best n_group_used may be chosen from
  uint32_t n_layer_dense_lead = 0;    // leading layers with a dense FFN of n_ff_dense
  uint32_t n_ff_dense = 0;
  // Multi-head latent attention (deepseek2): queries through a rank q_lora_rank bottleneck (0: a
  // plain projection), keys and values from one latent of kv_lora_rank per token (0: no MLA);
  // a query/key head is head_dim_k wide (rope_dim of it rotated), a value head head_dim wide.
  uint32_t q_lora_rank = 0, kv_lora_rank = 0, head_dim_k = 0;
  bool kv_b_split = false;      // attn_k_b and attn_v_b per head, not one attn_kv_b
  std::string tokenizer_model;  // tokenizer.ggml.model
  std::string tokenizer_pre;    // tokenizer.ggml.pre

  // Throws clusterctl::Error naming the file and the missing or bad key.
  static HParams from_gguf(const gguf::GgufFile& f);
  bool latent_attention() const { return kv_lora_rank > 0; }
};

}  // namespace clusterctl::model
