// The shapes `model synth --shape` knows: real models' (dense, mixtures of experts, deepseek2) and
// toys of every architecture for fast tests.
#include <algorithm>

#include "worker/common/error.h"
#include "worker/model/synth.h"

namespace clusterctl::model {
namespace {

// Real models' shapes, dense: what benchmarks and the reference logits run on.
void add_dense_shapes(std::vector<SynthShape>& s) {
  SynthShape l3;
  l3.name = "llama3-1b";
  l3.description = "Llama-3.2-1B";
  l3.arch = "llama";
  l3.n_embd = 2048, l3.n_layer = 16, l3.n_head = 32, l3.n_head_kv = 8, l3.head_dim = 64, l3.n_ff = 8192;
  l3.n_vocab = 128256, l3.n_ctx = 131072, l3.rope_base = 500000.0f, l3.rms_eps = 1e-5f;
  l3.tied_embeddings = true;
  l3.rope_scale_factor = 32, l3.rope_low_freq_factor = 1, l3.rope_high_freq_factor = 4, l3.rope_original_ctx = 8192;
  s.push_back(l3);

  SynthShape l8 = l3;
  l8.name = "llama3-8b";
  l8.description = "Llama-3.1-8B";
  l8.n_embd = 4096, l8.n_layer = 32, l8.n_head = 32, l8.n_head_kv = 8, l8.head_dim = 128, l8.n_ff = 14336;
  l8.tied_embeddings = false;
  l8.rope_scale_factor = 8;
  s.push_back(l8);

  SynthShape l70 = l8;
  l70.name = "llama3-70b";
  l70.description = "Llama-3.1-70B";
  l70.n_embd = 8192, l70.n_layer = 80, l70.n_head = 64, l70.n_head_kv = 8, l70.head_dim = 128, l70.n_ff = 28672;
  s.push_back(l70);

  SynthShape l300 = l3;
  l300.name = "llama-300m";
  l300.description = "a 300M Llama 3 (reference-figures.md)";
  l300.n_embd = 1024, l300.n_layer = 16, l300.n_head = 16, l300.n_head_kv = 4, l300.head_dim = 64, l300.n_ff = 4096;
  l300.n_ctx = 8192, l300.tied_embeddings = false, l300.rope_scale_factor = 0;
  s.push_back(l300);

  SynthShape q2;
  q2.name = "qwen2.5-0.5b";
  q2.description = "Qwen2.5-0.5B";
  q2.arch = "qwen2";
  q2.n_embd = 896, q2.n_layer = 24, q2.n_head = 14, q2.n_head_kv = 2, q2.head_dim = 64, q2.n_ff = 4864;
  q2.n_vocab = 151936, q2.n_ctx = 32768, q2.rope_base = 1000000.0f, q2.rms_eps = 1e-6f;
  q2.tied_embeddings = true;
  s.push_back(q2);

  SynthShape q3;
  q3.name = "qwen3-0.6b";
  q3.description = "Qwen3-0.6B";
  q3.arch = "qwen3";
  q3.n_embd = 1024, q3.n_layer = 28, q3.n_head = 16, q3.n_head_kv = 8, q3.head_dim = 128, q3.n_ff = 3072;
  q3.n_vocab = 151936, q3.n_ctx = 40960, q3.rope_base = 1000000.0f, q3.rms_eps = 1e-6f;
  q3.tied_embeddings = true;
  s.push_back(q3);
}

// Mixtures of experts at real size.
void add_expert_shapes(std::vector<SynthShape>& s) {
  SynthShape mixtral;
  mixtral.name = "mixtral-8x7b";
  mixtral.description = "Mixtral-8x7B";
  mixtral.arch = "llama";
  mixtral.n_embd = 4096, mixtral.n_layer = 32, mixtral.n_head = 32, mixtral.n_head_kv = 8, mixtral.head_dim = 128;
  mixtral.n_ff = 14336, mixtral.n_expert = 8, mixtral.n_expert_used = 2;
  mixtral.n_vocab = 32000, mixtral.n_ctx = 32768, mixtral.rope_base = 1000000.0f, mixtral.rms_eps = 1e-5f;
  s.push_back(mixtral);

  // A mid-size mixture of experts to measure against llama.cpp: OLMoE-1B-7B's experts (64 of 1024,
  // 8 per token: 7B weights, 1.3B read per token) in the llama architecture, which llama.cpp of
  // the reference commit runs (it predates qwen3moe).
  SynthShape olmoe;
  olmoe.name = "olmoe-1b-7b";
  olmoe.description = "OLMoE-1B-7B's expert layout (llama architecture)";
  olmoe.arch = "llama";
  olmoe.n_embd = 2048, olmoe.n_layer = 16, olmoe.n_head = 16, olmoe.n_head_kv = 16, olmoe.head_dim = 128;
  olmoe.n_ff = 1024, olmoe.n_expert = 64, olmoe.n_expert_used = 8;
  olmoe.n_vocab = 0, olmoe.n_ctx = 4096, olmoe.rope_base = 10000.0f, olmoe.rms_eps = 1e-5f;
  s.push_back(olmoe);

  SynthShape q3moe = *std::find_if(s.begin(), s.end(), [](const SynthShape& x) { return x.name == "qwen3-0.6b"; });
  q3moe.name = "qwen3-30b-a3b";
  q3moe.description = "Qwen3-30B-A3B";
  q3moe.arch = "qwen3moe";
  q3moe.n_embd = 2048, q3moe.n_layer = 48, q3moe.n_head = 32, q3moe.n_head_kv = 4, q3moe.head_dim = 128;
  q3moe.n_ff = 768, q3moe.n_expert = 128, q3moe.n_expert_used = 8, q3moe.n_ff_dense = 6144;
  q3moe.tied_embeddings = false;
  s.push_back(q3moe);
}

// Toys of every architecture for fast tests.
void add_toy_shapes(std::vector<SynthShape>& s) {
  // 256 wide so every row is a whole K-quant super-block: K-type files really hold K-type tensors.
  SynthShape tiny;
  tiny.name = "tiny";
  tiny.description = "a 2-layer toy for fast tests (vocabulary size from the vocab file)";
  tiny.arch = "llama";
  tiny.n_embd = 256, tiny.n_layer = 2, tiny.n_head = 4, tiny.n_head_kv = 2, tiny.head_dim = 64, tiny.n_ff = 512;
  tiny.n_vocab = 0, tiny.n_ctx = 4096, tiny.rope_base = 10000.0f, tiny.rms_eps = 1e-5f;
  s.push_back(tiny);

  // YaRN: the toy stretched 4x past an original context of 1024 (as Qwen3's 128K GGUFs are).
  SynthShape tiny_yarn = tiny;
  tiny_yarn.name = "tiny-yarn";
  tiny_yarn.description = "the 2-layer toy with YaRN RoPE scaling (4x over 1024 tokens) for fast tests";
  tiny_yarn.rope_yarn = true, tiny_yarn.rope_scale_factor = 4, tiny_yarn.rope_original_ctx = 1024;
  s.push_back(tiny_yarn);

  // The toys' mixtures of experts: Mixtral's scheme (llama, 8 experts, 2 per token) and Qwen3-MoE's.
  SynthShape tiny_moe = tiny;
  tiny_moe.name = "tiny-moe";
  tiny_moe.description = "a 2-layer Mixtral-style toy (8 experts, 2 per token) for fast tests";
  tiny_moe.n_expert = 8, tiny_moe.n_expert_used = 2;
  s.push_back(tiny_moe);

  SynthShape tiny_q3 = tiny;
  tiny_q3.name = "tiny-qwen3";
  tiny_q3.description = "a 2-layer Qwen3-style toy (QK-norm, NeoX RoPE, 8 heads over 256 wide) for fast tests";
  tiny_q3.arch = "qwen3";
  tiny_q3.n_head = 8, tiny_q3.rope_base = 1000000.0f, tiny_q3.rms_eps = 1e-6f;
  s.push_back(tiny_q3);

  SynthShape tiny_q3moe = tiny;
  tiny_q3moe.name = "tiny-qwen3moe";
  tiny_q3moe.description = "a 2-layer Qwen3-MoE-style toy (16 experts of 256, 4 per token) for fast tests";
  tiny_q3moe.arch = "qwen3moe";
  tiny_q3moe.n_head = 8;  // 512 query columns for 256 wide, as Qwen3-MoE's heads outsize its width
  tiny_q3moe.n_ff = 256, tiny_q3moe.n_expert = 16, tiny_q3moe.n_expert_used = 4, tiny_q3moe.n_ff_dense = 1024;
  tiny_q3moe.rope_base = 1000000.0f, tiny_q3moe.rms_eps = 1e-6f;
  s.push_back(tiny_q3moe);

  SynthShape tiny_ernie = tiny;
  tiny_ernie.name = "tiny-ernie4_5";
  tiny_ernie.description = "a 2-layer ERNIE-4.5-style toy (4 heads of 128 over 256 wide, tied head) for fast tests";
  tiny_ernie.arch = "ernie4_5";
  tiny_ernie.head_dim = 128, tiny_ernie.rope_base = 500000.0f, tiny_ernie.tied_embeddings = true;
  s.push_back(tiny_ernie);

  // 16 heads of 64 and an FFN of 1024: attention output and FFN four 256-value blocks wide, so the
  // K and IQ types split over 2, 3 (2,1,1) and 4 ranks.
  SynthShape tiny_wide = tiny;
  tiny_wide.name = "tiny-wide";
  tiny_wide.description = "a 2-layer toy 4 super-blocks wide in attention and FFN (16 heads) for fast split tests";
  tiny_wide.n_head = 16, tiny_wide.n_head_kv = 4, tiny_wide.n_ff = 1024;
  s.push_back(tiny_wide);
}

// deepseek2 at real size (plan and doctor size clusters with them, --sparse) and its toys.
void add_deepseek2_shapes(std::vector<SynthShape>& s) {
  SynthShape v3;
  v3.name = "deepseek-v3";
  v3.description = "DeepSeek-V3 / R1 671B";
  v3.arch = "deepseek2";
  v3.n_embd = 7168, v3.n_layer = 61, v3.n_head = 128, v3.n_head_kv = 128, v3.head_dim = 192, v3.head_dim_v = 128;
  v3.rope_dim = 64, v3.q_lora_rank = 1536, v3.kv_lora_rank = 512, v3.kv_b_split = true;
  v3.n_ff = 2048, v3.n_ff_dense = 18432, v3.n_layer_dense_lead = 3;
  v3.n_expert = 256, v3.n_expert_used = 8, v3.n_expert_shared = 1, v3.n_expert_groups = 8, v3.n_group_used = 4;
  v3.expert_sigmoid = true, v3.expert_probs_bias = true, v3.expert_weights_norm = true, v3.expert_weights_scale = 2.5f;
  v3.n_vocab = 129280, v3.n_ctx = 163840, v3.rope_base = 10000.0f, v3.rms_eps = 1e-6f;
  v3.rope_yarn = true, v3.rope_scale_factor = 40, v3.rope_original_ctx = 4096, v3.rope_yarn_log_mul = 0.1f;
  s.push_back(v3);

  SynthShape k2 = v3;
  k2.name = "kimi-k2";
  k2.description = "Kimi-K2 1T";
  k2.n_head = 64, k2.n_head_kv = 64, k2.n_expert = 384, k2.n_layer_dense_lead = 1;
  k2.n_expert_groups = 1, k2.n_group_used = 1, k2.expert_weights_scale = 2.827f;
  k2.n_vocab = 163840, k2.n_ctx = 131072, k2.rope_base = 50000.0f, k2.rope_scale_factor = 32;
  s.push_back(k2);

  SynthShape lite;
  lite.name = "deepseek-v2-lite";
  lite.description = "DeepSeek-V2-Lite 16B";
  lite.arch = "deepseek2";
  lite.n_embd = 2048, lite.n_layer = 27, lite.n_head = 16, lite.n_head_kv = 16, lite.head_dim = 192;
  lite.head_dim_v = 128, lite.rope_dim = 64, lite.kv_lora_rank = 512;
  lite.n_ff = 1408, lite.n_ff_dense = 10944, lite.n_layer_dense_lead = 1;
  lite.n_expert = 64, lite.n_expert_used = 6, lite.n_expert_shared = 2, lite.expert_weights_scale = 1.0f;
  lite.n_vocab = 102400, lite.n_ctx = 163840, lite.rope_base = 10000.0f, lite.rms_eps = 1e-6f;
  lite.rope_yarn = true, lite.rope_scale_factor = 40, lite.rope_original_ctx = 4096, lite.rope_yarn_log_mul = 0.0707f;
  s.push_back(lite);

  // Toys 256 wide (whole K-quant blocks), 8 heads of 64 value columns (attn_output is then two
  // Q4_K blocks wide, so two ranks can split it), one dense layer before two of experts.
  SynthShape t3;
  t3.name = "tiny-deepseek3";
  t3.description =
      "a 3-layer DeepSeek-V3-style toy (latent attention, q low-rank, sigmoid routing with bias "
      "in 4 groups, 2 shared experts, YaRN; attn_k_b/attn_v_b) for fast tests";
  t3.arch = "deepseek2";
  t3.n_embd = 256, t3.n_layer = 3, t3.n_head = 8, t3.n_head_kv = 8, t3.head_dim = 96, t3.head_dim_v = 64;
  t3.rope_dim = 32, t3.q_lora_rank = 256, t3.kv_lora_rank = 256, t3.kv_b_split = true;
  t3.n_ff = 256, t3.n_ff_dense = 512, t3.n_layer_dense_lead = 1;
  t3.n_expert = 16, t3.n_expert_used = 4, t3.n_expert_shared = 2, t3.n_expert_groups = 4, t3.n_group_used = 2;
  t3.expert_sigmoid = true, t3.expert_probs_bias = true, t3.expert_weights_norm = true, t3.expert_weights_scale = 2.5f;
  t3.n_vocab = 0, t3.n_ctx = 4096, t3.rope_base = 10000.0f, t3.rms_eps = 1e-6f;
  t3.rope_yarn = true, t3.rope_scale_factor = 4, t3.rope_original_ctx = 1024, t3.rope_yarn_log_mul = 0.1f;
  s.push_back(t3);

  SynthShape t3f = t3;
  t3f.name = "tiny-deepseek3-fused";
  t3f.description = "tiny-deepseek3 with the older fused attn_kv_b (the same weights)";
  t3f.kv_b_split = false;
  s.push_back(t3f);

  SynthShape t2 = t3;
  t2.name = "tiny-deepseek2-lite";
  t2.description =
      "a 3-layer DeepSeek-V2-Lite-style toy (latent attention, plain q, softmax routing, 2 shared "
      "experts, YaRN with mscale 0.707; fused attn_kv_b) for fast tests";
  t2.q_lora_rank = 0, t2.kv_b_split = false;
  t2.n_expert_groups = 0, t2.n_group_used = 0, t2.expert_sigmoid = false, t2.expert_probs_bias = false;
  t2.expert_weights_norm = false, t2.expert_weights_scale = 1.0f, t2.rope_yarn_log_mul = 0.0707f;
  s.push_back(t2);

  SynthShape t2s = t2;
  t2s.name = "tiny-deepseek2-lite-split";
  t2s.description = "tiny-deepseek2-lite with attn_k_b/attn_v_b (the same weights)";
  t2s.kv_b_split = true;
  s.push_back(t2s);
}

std::vector<SynthShape> make_shapes() {
  std::vector<SynthShape> s;
  add_dense_shapes(s);
  add_expert_shapes(s);
  add_toy_shapes(s);
  add_deepseek2_shapes(s);
  return s;
}

template <typename T>
std::string names_of(const std::vector<T>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x.name;
  return s;
}
}  // namespace

const std::vector<SynthShape>& synth_shapes() {
  static const std::vector<SynthShape> shapes = make_shapes();
  return shapes;
}

const SynthShape& find_synth_shape(std::string_view name) {
  for (const auto& s : synth_shapes())
    if (s.name == name) return s;
  throw Error("unknown model shape '" + std::string(name) + "' (known shapes: " + names_of(synth_shapes()) + ")");
}

}  // namespace clusterctl::model
