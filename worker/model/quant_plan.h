#pragma once
// llama-quantize's choices, shared by `model synth` and `model quantize`: the presets (--type),
// and for each tensor the type a preset gives it (more bits for the output and some layers'
// attn_v / ffn_down in the _M mixes, the fallbacks for rows a type's blocks do not fit).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "worker/gguf/ggml_types.h"
#include "worker/model/hparams.h"
#include "worker/model/tensor_table.h"

namespace clusterctl::model {

// A --type: one ggml type, or a llama-quantize preset mixing types.
struct QuantPreset {
  std::string name;
  gguf::GgmlType base;
  uint32_t file_type;  // general.file_type (llama_ftype)
  // Q4_K_M / Q5_K_M: Q6_K for attn_v and ffn_down of some layers. (The low-bit mixes Q2_K, Q3_K_S/M/L,
  // IQ4_NL and IQ4_XS, llama_ftype 10..13, 25, 30, and the IQ1-IQ3 mixes, 19..29 and 31, choose by
  // file_type.)
  bool k_mix = false;
};
const std::vector<QuantPreset>& quant_presets();
const QuantPreset& find_quant_preset(std::string_view name);  // case-insensitive; throws listing the names

// llama-quantize's view of a tensor: which types it may take.
// (AttnQ, AttnK, FfnGate, FfnUp: only the IQ3 mixes and 8-expert models treat them apart from
// the other matrices.)
enum class QuantRole {
  Embedding,
  Output,
  AttnQ,
  AttnK,
  AttnV,
  AttnOutput,
  FfnGate,
  FfnUp,
  FfnDown,
  Matrix,
  Vector,
  Router
};
QuantRole quant_role(const TensorSpec& t, bool tied_embeddings);

// The type `preset` gives a tensor of `role` in `layer` of model `hp`, whose rows are `ncols` long
// (`pure`: the base type for every matrix, as llama-quantize --pure). The model's layer count, GQA,
// experts and whether it is a Llama 70B (80 layers with GQA: llama.cpp's LLM_TYPE_70B) steer the
// mixes as in llama-quantize. Throws clusterctl::Error where llama-quantize has no fallback for the
// row length (Q4_0 or Q8_0 rows not a multiple of 32).
gguf::GgmlType choose_quant_type(const QuantPreset& preset, QuantRole role, uint32_t layer, const HParams& hp,
                                 uint64_t ncols, bool pure);
// Whether llama-quantize leaves a tensor of this type as it is (F32, F16, BF16).
bool is_float_type(gguf::GgmlType t);

}  // namespace clusterctl::model
