#pragma once
// Random-weight models with the exact tensor names, shapes and metadata of real ones, written
// as GGUF files llama.cpp loads: what tests and benchmarks run on without downloading weights.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "worker/gguf/ggml_types.h"
#include "worker/model/quant_plan.h"

namespace clusterctl::model {

// The shape of a model family member.
struct SynthShape {
  std::string name;         // what --shape takes, e.g. "llama3-1b"
  std::string description;  // the real model it mirrors
  std::string arch;         // general.architecture (its tensors: architecture.h)
  uint32_t n_embd = 0;
  uint32_t n_layer = 0;
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  uint32_t head_dim = 0;  // 0: n_embd / n_head
  uint32_t n_ff = 0;
  uint32_t n_vocab = 0;  // 0: whatever the vocab file has
  uint32_t n_ctx = 0;
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;
  bool tied_embeddings = false;  // no output.weight: the output reuses token_embd
  // Mixture of experts: n_expert experts of width n_ff per layer, n_expert_used per token (0: dense).
  uint32_t n_expert = 0, n_expert_used = 0;
  uint32_t n_ff_dense = 0;  // qwen3moe's feed_forward_length beside the experts' width (0: n_ff)
  // Llama 3 frequency scaling (rope_freqs tensor); factor 0 means none. With rope_yarn, YaRN
  // scaling by rope_scale_factor over rope_original_ctx instead (rope.scaling.* metadata).
  float rope_scale_factor = 0, rope_low_freq_factor = 1, rope_high_freq_factor = 4;
  uint32_t rope_original_ctx = 8192;
  bool rope_yarn = false;
  // deepseek2: the query and KV latents' ranks (q_lora_rank 0: a plain query), the RoPE part of
  // the key head (head_dim), the value head, the first layers' dense FFN (n_ff_dense wide), shared
  // experts, group-limited and sigmoid routing with V3's bias, the weights' norm and scale, YaRN's
  // yarn_log_multiplier as the file stores it, and the kv_b layout (split per head, or fused).
  uint32_t q_lora_rank = 0, kv_lora_rank = 0, rope_dim = 0, head_dim_v = 0;
  uint32_t n_layer_dense_lead = 0, n_expert_shared = 0, n_expert_groups = 0, n_group_used = 0;
  bool expert_sigmoid = false, expert_probs_bias = false, expert_weights_norm = false, kv_b_split = false;
  float expert_weights_scale = 0, rope_yarn_log_mul = 0;

  uint32_t head_size() const { return head_dim ? head_dim : n_embd / n_head; }
};

const std::vector<SynthShape>& synth_shapes();
const SynthShape& find_synth_shape(std::string_view name);  // throws listing the known names

// A --type: one ggml type, or a llama-quantize preset mixing types (quant_plan.h).
using SynthType = QuantPreset;
const std::vector<SynthType>& synth_types();
const SynthType& find_synth_type(std::string_view name);  // throws listing the known names

struct SynthTensor {
  std::string name;
  gguf::GgmlType type;
  std::vector<uint64_t> shape;  // ggml order
};

// The tensor table of a model: names, shapes, and the types llama-quantize would choose
// (`pure`: every matrix in the base type, as llama-quantize --pure).
std::vector<SynthTensor> plan_synth_tensors(const SynthShape& shape, const SynthType& type, uint32_t n_vocab,
                                            bool pure = false);

struct SynthOptions {
  std::string shape;
  std::string type;
  std::string vocab_path;  // GGUF holding tokenizer.ggml.* metadata
  std::string out_path;
  uint64_t seed = 1;
  int threads = 0;  // 0: the physical cores
  bool pure = false;
  bool pad_vocab = false;  // pad a smaller vocabulary with unused tokens up to the shape's size
  int parts = 1;           // > 1: a split model, OUT-0000K-of-0000N.gguf (gguf_split.h)
  bool sparse = false;     // tensor data left a hole (GgufWriter::set_sparse): for plan and doctor
  // > 0: each tensor has only this many distinct rows, repeated (row i is row i % N): a full-size file
  // for speed benchmarks written in minutes instead of hours of quantising.
  uint64_t distinct_rows = 0;
  std::function<void(const std::string&)> log;  // progress lines; may be empty
};

// Writes the model (OUT.tmp, then renamed; each part so when split). Throws clusterctl::Error naming a bad shape, type,
// vocabulary file or a vocabulary of the wrong size. Returns the file size.
uint64_t synth_model(const SynthOptions& opts);

}  // namespace clusterctl::model
