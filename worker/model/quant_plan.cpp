#include "worker/model/quant_plan.h"

#include <cctype>

#include "worker/common/error.h"
#include "worker/kernels/kernels.h"

namespace clusterctl::model {
namespace {

using gguf::GgmlType;

// file_type numbers are llama.cpp's llama_ftype. Plain K types have no ftype of their own:
// Q4_K / Q5_K are labelled as the "small" presets (14 / 16).
std::vector<QuantPreset> make_presets() {
  return {
      {"F32", GgmlType::F32, 0},
      {"F16", GgmlType::F16, 1},
      {"BF16", GgmlType::BF16, 32},
      {"Q8_0", GgmlType::Q8_0, 7},
      {"Q4_0", GgmlType::Q4_0, 2},
      {"Q4_1", GgmlType::Q4_1, 3},
      {"Q5_0", GgmlType::Q5_0, 8},
      {"Q5_1", GgmlType::Q5_1, 9},
      {"Q4_K", GgmlType::Q4_K, 14},
      {"Q5_K", GgmlType::Q5_K, 16},
      {"Q6_K", GgmlType::Q6_K, 18},
      {"Q4_K_M", GgmlType::Q4_K, 15, true},
      {"Q5_K_M", GgmlType::Q5_K, 17, true},
      {"Q2_K", GgmlType::Q2_K, 10},
      {"Q3_K_S", GgmlType::Q3_K, 11},
      {"Q3_K_M", GgmlType::Q3_K, 12},
      {"Q3_K_L", GgmlType::Q3_K, 13},
      {"IQ4_NL", GgmlType::IQ4_NL, 25},
      {"IQ4_XS", GgmlType::IQ4_XS, 30},
  };
}

int64_t block_of(GgmlType t) { return gguf::type_traits(t).block_size; }

// llama-quantize's choice when a row is not a whole number of the type's blocks: the K types fall
// back to a 32-block type, and to F16 when even that does not fit; the others have no fallback.
GgmlType fallback_for_row(GgmlType t, uint64_t ncols) {
  if (ncols % block_of(t) == 0) return t;
  GgmlType f;
  switch (t) {
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
      f = GgmlType::Q4_0;
      break;
    case GgmlType::IQ4_XS:
      f = GgmlType::IQ4_NL;
      break;
    case GgmlType::Q4_K:
      f = GgmlType::Q5_0;
      break;
    case GgmlType::Q5_K:
      f = GgmlType::Q5_1;
      break;
    case GgmlType::Q6_K:
      f = GgmlType::Q8_0;
      break;
    default:
      throw Error("rows of " + std::to_string(ncols) + " values are not a whole number of " +
                  std::string(gguf::type_name(t)) + " blocks of " + std::to_string(block_of(t)) +
                  ", and llama-quantize has no fallback for " + std::string(gguf::type_name(t)) +
                  "; choose a K-quant preset (e.g. Q4_K_M), which falls back per tensor");
  }
  return ncols % block_of(f) == 0 ? f : GgmlType::F16;
}

// llama-quantize's use_more_bits: the first and last eighth of the layers and every third between.
bool use_more_bits(uint32_t i, uint32_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

}  // namespace

const std::vector<QuantPreset>& quant_presets() {
  static const std::vector<QuantPreset> presets = make_presets();
  return presets;
}

const QuantPreset& find_quant_preset(std::string_view name) {
  std::string upper(name);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string names;
  for (const auto& p : quant_presets()) {
    if (p.name == upper) return p;
    names += (names.empty() ? "" : ", ") + p.name;
  }
  throw Error("unknown model type '" + std::string(name) + "' (known types: " + names + ")");
}

QuantRole quant_role(const TensorSpec& t, bool tied_embeddings) {
  switch (t.kind) {
    case TensorKind::TokenEmbd:
      return tied_embeddings ? QuantRole::Output : QuantRole::Embedding;
    case TensorKind::Output:
      return QuantRole::Output;
    case TensorKind::AttnV:
      return QuantRole::AttnV;
    case TensorKind::AttnOutput:
      return QuantRole::AttnOutput;
    case TensorKind::FfnDown:
    case TensorKind::FfnDownExps:
      return QuantRole::FfnDown;
    case TensorKind::FfnRouter:
      return QuantRole::Router;
    default:
      return t.shape.size() == 1 ? QuantRole::Vector : QuantRole::Matrix;
  }
}

// llama-quantize's llama_tensor_get_type_impl for the low-bit mixes (ftype 10..13, 25, 30) and a
// tensor other than the output: the type of attn_v, attn_output and ffn_down, else the base type.
GgmlType low_bit_mix(uint32_t ftype, GgmlType ty, QuantRole role, uint32_t layer, uint32_t n_layer, uint32_t n_gqa,
                     uint32_t n_expert, bool llama_70b) {
  constexpr uint32_t kQ2_K = 10, kQ3_K_S = 11, kQ3_K_M = 12, kQ3_K_L = 13, kIQ4_NL = 25, kIQ4_XS = 30;
  const bool iq4 = ftype == kIQ4_NL || ftype == kIQ4_XS;
  if (ftype != kQ2_K && ftype != kQ3_K_S && ftype != kQ3_K_M && ftype != kQ3_K_L && !iq4) return ty;
  switch (role) {
    case QuantRole::AttnV:
      if (ftype == kQ2_K)
        ty = n_gqa >= 4 ? GgmlType::Q4_K : GgmlType::Q3_K;
      else if (ftype == kQ3_K_M)
        ty = layer < 2 ? GgmlType::Q5_K : GgmlType::Q4_K;
      else if (ftype == kQ3_K_L)
        ty = GgmlType::Q5_K;
      else if (iq4 && n_gqa >= 4)
        ty = GgmlType::Q5_K;
      if (llama_70b && (ty == GgmlType::Q3_K || ty == GgmlType::Q4_K)) ty = GgmlType::Q5_K;
      if (n_expert == 8) ty = GgmlType::Q8_0;
      return ty;
    case QuantRole::FfnDown:
      if (ftype == kQ2_K) return GgmlType::Q3_K;
      if (ftype == kQ3_K_M) return layer < n_layer / 16 ? GgmlType::Q5_K : GgmlType::Q4_K;
      if (ftype == kQ3_K_L) return GgmlType::Q5_K;
      if (iq4 && layer < n_layer / 8) return GgmlType::Q5_K;  // (without an importance matrix)
      return ty;
    case QuantRole::AttnOutput:
      if (n_expert == 8) return ftype == kQ3_K_L ? ty : GgmlType::Q5_K;
      if (ftype == kQ2_K) return GgmlType::Q3_K;
      if (ftype == kQ3_K_M) return GgmlType::Q4_K;
      if (ftype == kQ3_K_L) return GgmlType::Q5_K;
      return ty;
    default:
      return ty;
  }
}

bool is_float_type(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

GgmlType choose_quant_type(const QuantPreset& preset, QuantRole role, uint32_t layer, const HParams& hp, uint64_t ncols,
                           bool pure) {
  const uint32_t n_layer = hp.n_layer, n_gqa = hp.n_head / hp.n_head_kv;
  const bool llama_70b = hp.arch == "llama" && n_layer == 80 && n_gqa > 1;
  // Norms, biases, rope factors: llama-quantize keeps 1-D tensors F32, and the experts' router too.
  if (role == QuantRole::Vector || role == QuantRole::Router) return GgmlType::F32;
  GgmlType ty = preset.base;
  if (is_float_type(ty)) return ty;
  if (!pure) {
    if (role == QuantRole::Output) {
      // The output matrix (token_embd when tied) gets Q6_K unless the preset is Q8_0.
      if (ncols % kernels::QK_K != 0)
        ty = GgmlType::Q8_0;
      else if (ty != GgmlType::Q8_0)
        ty = GgmlType::Q6_K;
    } else if (preset.k_mix && (role == QuantRole::AttnV || role == QuantRole::FfnDown) &&
               use_more_bits(layer, n_layer)) {
      ty = GgmlType::Q6_K;
    } else if (!preset.k_mix) {
      ty = low_bit_mix(preset.file_type, ty, role, layer, n_layer, n_gqa, hp.n_expert, llama_70b);
    }
  }
  return fallback_for_row(ty, ncols);
}

}  // namespace clusterctl::model
