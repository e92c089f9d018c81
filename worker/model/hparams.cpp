#include "worker/model/hparams.h"

#include "worker/common/error.h"
#include "worker/model/architecture.h"

namespace clusterctl::model {
namespace {

uint32_t required_u32(const gguf::GgufFile& f, const std::string& key) {
  auto v = f.get_int(key);
  if (!v) throw Error(f.path() + ": metadata key '" + key + "' is missing: the file is not a complete model");
  if (*v <= 0 || *v > INT32_MAX)
    throw Error(f.path() + ": metadata '" + key + "' = " + std::to_string(*v) + " is out of range");
  return static_cast<uint32_t>(*v);
}

uint32_t optional_u32(const gguf::GgufFile& f, const std::string& key, uint32_t fallback) {
  if (!f.find(key)) return fallback;
  return required_u32(f, key);
}

}  // namespace

HParams HParams::from_gguf(const gguf::GgufFile& f) {
  HParams h;
  h.arch = f.architecture();
  if (h.arch.empty()) throw Error(f.path() + ": metadata key 'general.architecture' is missing");
  h.name = f.get_string("general.name", "");
  h.n_embd = required_u32(f, f.arch_key("embedding_length"));
  h.n_layer = required_u32(f, f.arch_key("block_count"));
  h.n_head = required_u32(f, f.arch_key("attention.head_count"));
  h.n_head_kv = optional_u32(f, f.arch_key("attention.head_count_kv"), h.n_head);
  h.n_ff = optional_u32(f, f.arch_key("feed_forward_length"), 0);
  // Some converters write expert_count = 0 into dense models.
  if (f.get_int(f.arch_key("expert_count")).value_or(0) != 0) h.n_expert = required_u32(f, f.arch_key("expert_count"));
  if (h.n_expert > 0) {
    h.n_expert_used = required_u32(f, f.arch_key("expert_used_count"));
    if (h.n_expert > kMaxExperts)
      throw Error(f.path() + ": " + std::to_string(h.n_expert) +
                  " experts per layer; the engine routes among at most " + std::to_string(kMaxExperts));
    if (h.n_expert_used > h.n_expert)
      throw Error(f.path() + ": '" + f.arch_key("expert_used_count") + "' = " + std::to_string(h.n_expert_used) +
                  " exceeds the " + std::to_string(h.n_expert) + " experts of '" + f.arch_key("expert_count") + "'");
    // Qwen3-MoE states the experts' width apart from the dense feed_forward_length it also carries.
    h.n_ff = optional_u32(f, f.arch_key("expert_feed_forward_length"), h.n_ff);
  }
  h.n_ctx_train = optional_u32(f, f.arch_key("context_length"), 2048);
  h.head_dim = optional_u32(f, f.arch_key("attention.key_length"), h.n_embd / h.n_head);
  h.rope_dim = optional_u32(f, f.arch_key("rope.dimension_count"), h.head_dim);
  if (auto e = f.get_float(f.arch_key("attention.layer_norm_rms_epsilon"))) h.rms_eps = static_cast<float>(*e);
  if (auto b = f.get_float(f.arch_key("rope.freq_base"))) h.rope_freq_base = static_cast<float>(*b);
  h.rope_scaling_type = f.get_string(f.arch_key("rope.scaling.type"), "");
  if (auto v = f.get_float(f.arch_key("rope.scaling.factor"))) h.rope_scaling_factor = static_cast<float>(*v);
  h.rope_scaling_orig_ctx = optional_u32(f, f.arch_key("rope.scaling.original_context_length"), 0);
  if (auto v = f.get_float(f.arch_key("rope.scaling.low_freq_factor"))) h.rope_low_freq_factor = static_cast<float>(*v);
  if (auto v = f.get_float(f.arch_key("rope.scaling.high_freq_factor")))
    h.rope_high_freq_factor = static_cast<float>(*v);
  if (auto v = f.get_float(f.arch_key("rope.scaling.attn_factor"))) h.rope_attn_factor = static_cast<float>(*v);
  h.tokenizer_model = f.get_string("tokenizer.ggml.model", "");
  h.tokenizer_pre = f.get_string("tokenizer.ggml.pre", "");
  if (auto v = f.get_int(f.arch_key("vocab_size"))) {
    h.n_vocab = static_cast<uint32_t>(*v);
  } else if (const auto* tok = f.find("tokenizer.ggml.tokens")) {
    h.n_vocab = static_cast<uint32_t>(tok->as_array().items.size());
  } else if (const auto* emb = f.find_tensor("token_embd.weight"); emb && emb->shape.size() >= 2) {
    h.n_vocab = static_cast<uint32_t>(emb->shape[1]);
  }
  if (const Architecture* a = lookup_architecture(h.arch)) {
    h.expert_weights_norm = a->normalize_expert_weights;
    if (a->read_hparams) a->read_hparams(f, h);
  }
  if (h.n_head_kv == 0 || h.n_head % h.n_head_kv != 0)
    throw Error(f.path() + ": " + std::to_string(h.n_head) + " attention heads are not a multiple of " +
                std::to_string(h.n_head_kv) + " KV heads");
  return h;
}

}  // namespace clusterctl::model
