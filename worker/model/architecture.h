#pragma once
// What distinguishes one supported general.architecture from another. Each architecture is
// one small file (arch_<name>.cpp) that returns its spec; the forward pass reads only the spec.
#include <string>
#include <string_view>

namespace clusterctl::model {

enum class RopeLayout {
  Adjacent,   // rotate pairs (x[2i], x[2i+1]): llama.cpp's "normal" rope (Llama)
  NeoxHalves  // rotate pairs (x[i], x[i + d/2]): llama.cpp's "neox" rope (Qwen)
};

struct ArchSpec {
  std::string_view name;
  RopeLayout rope = RopeLayout::Adjacent;
  bool qkv_bias = false;  // attn_q/k/v.bias added after the projections (Qwen2)
  bool qk_norm = false;   // attn_q_norm/attn_k_norm: RMSNorm over each head before RoPE (Qwen3)
  // Mixture of experts (expert_count > 0; ffn_gate_inp routes each token to expert_used_count of
  // the experts in ffn_{gate,up,down}_exps). `experts_required`: the architecture has no dense FFN.
  bool experts_required = false;
  bool normalize_expert_weights = true;  // the chosen experts' router probabilities rescaled to sum to 1
};

ArchSpec llama_arch();
ArchSpec qwen2_arch();
ArchSpec qwen3_arch();
ArchSpec qwen3moe_arch();

// The spec for a GGUF general.architecture; throws clusterctl::Error naming an unsupported one.
ArchSpec arch_spec(const std::string& arch, const std::string& file);

}  // namespace clusterctl::model
