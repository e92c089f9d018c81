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
      // The 1-3-bit IQ mixes (llama-quantize's names and base types: IQ2_S is mostly IQ2_XS,
      // IQ2_M mostly IQ2_S, IQ3_XS and IQ3_M mostly IQ3_S). Their quantisers need an importance
      // matrix: `model synth` writes random valid blocks, `model quantize` refuses them.
      {"IQ1_S", GgmlType::IQ1_S, 24},
      {"IQ1_M", GgmlType::IQ1_M, 31},
      {"IQ2_XXS", GgmlType::IQ2_XXS, 19},
      {"IQ2_XS", GgmlType::IQ2_XS, 20},
      {"IQ2_S", GgmlType::IQ2_XS, 28},
      {"IQ2_M", GgmlType::IQ2_S, 29},
      {"IQ3_XXS", GgmlType::IQ3_XXS, 23},
      {"IQ3_XS", GgmlType::IQ3_S, 22},
      {"IQ3_S", GgmlType::IQ3_S, 26},
      {"IQ3_M", GgmlType::IQ3_S, 27},
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
    case GgmlType::IQ1_S:
    case GgmlType::IQ1_M:
    case GgmlType::IQ2_XXS:
    case GgmlType::IQ2_XS:
    case GgmlType::IQ2_S:
    case GgmlType::IQ3_XXS:
    case GgmlType::IQ3_S:
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
    case TensorKind::AttnQ:
      return QuantRole::AttnQ;
    case TensorKind::AttnK:
      return QuantRole::AttnK;
    case TensorKind::AttnV:
    case TensorKind::AttnKvB:  // llama-quantize counts it with attn_v
      return QuantRole::AttnV;
    case TensorKind::FfnGate:
    case TensorKind::FfnGateExps:
      return QuantRole::FfnGate;
    case TensorKind::FfnUp:
    case TensorKind::FfnUpExps:
      return QuantRole::FfnUp;
    case TensorKind::AttnOutput:
      return QuantRole::AttnOutput;
    case TensorKind::FfnDown:
    case TensorKind::FfnDownExps:
    case TensorKind::FfnDownShexp:
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

// llama_ftype numbers of the IQ1-IQ3 mixes.
constexpr uint32_t kIQ2_XXS = 19, kIQ2_XS = 20, kIQ3_XS = 22, kIQ3_XXS = 23, kIQ1_S = 24, kIQ3_S = 26, kIQ3_M = 27,
                   kIQ2_S = 28, kIQ2_M = 29, kIQ1_M = 31;

// The 1-2-bit mixes, which llama-quantize treats as one family.
bool is_iq12_mix(uint32_t ftype) {
  return ftype == kIQ2_XXS || ftype == kIQ2_XS || ftype == kIQ1_S || ftype == kIQ2_S || ftype == kIQ2_M ||
         ftype == kIQ1_M;
}
bool is_iq3_mix(uint32_t ftype) { return ftype == kIQ3_XXS || ftype == kIQ3_XS || ftype == kIQ3_S || ftype == kIQ3_M; }

// llama-quantize's llama_tensor_get_type_impl for the IQ1-IQ3 mixes and a tensor other than the
// output, as run with an importance matrix (the IQ1/IQ2/IQ3_XXS quantisers refuse to run
// without one, and the files people download are made with one).
GgmlType iq_mix(uint32_t ftype, GgmlType ty, QuantRole role, uint32_t layer, uint32_t n_layer, uint32_t n_gqa,
                uint32_t n_expert, bool llama_70b) {
  const bool iq2s = ftype == kIQ2_S || ftype == kIQ2_M;
  if (role == QuantRole::Embedding) {
    if (ftype == kIQ2_XXS || ftype == kIQ2_XS || ftype == kIQ1_S || ftype == kIQ1_M) return GgmlType::Q2_K;
    if (iq2s || ftype == kIQ3_XXS) return GgmlType::IQ3_S;
    return ty;
  }
  if (is_iq12_mix(ftype)) {
    switch (role) {
      case QuantRole::AttnV:
        if (n_gqa >= 4 || n_expert >= 4) return GgmlType::Q4_K;
        return iq2s ? GgmlType::IQ3_S : GgmlType::Q2_K;
      case QuantRole::AttnK:
        return n_expert == 8 ? GgmlType::Q4_K : ty;
      case QuantRole::FfnDown:
        if (layer < n_layer / 8) return iq2s ? GgmlType::IQ3_S : GgmlType::Q2_K;
        return ty;
      case QuantRole::AttnOutput:
        if (n_expert == 8) return GgmlType::Q5_K;
        if (ftype == kIQ1_S || ftype == kIQ1_M) return GgmlType::IQ2_XXS;
        return iq2s ? GgmlType::IQ3_S : ty;
      default:
        return ty;
    }
  }
  switch (role) {  // the IQ3 mixes
    case QuantRole::AttnV:
      if (ftype == kIQ3_XXS)
        ty = n_gqa >= 4 ? GgmlType::Q4_K : GgmlType::IQ3_XXS;
      else if ((ftype == kIQ3_XS || ftype == kIQ3_S) && n_gqa >= 4)
        ty = GgmlType::Q4_K;
      else if (ftype == kIQ3_M)
        ty = GgmlType::Q4_K;
      if (llama_70b && ty == GgmlType::Q4_K) ty = GgmlType::Q5_K;
      if (n_expert == 8) ty = GgmlType::Q8_0;
      return ty;
    case QuantRole::AttnK:
      if (n_expert == 8) return GgmlType::Q8_0;
      [[fallthrough]];
    case QuantRole::AttnQ:
      if (ftype == kIQ3_XS) return GgmlType::IQ3_XXS;
      if (ftype == kIQ3_XXS) return GgmlType::IQ2_S;
      return ty;
    case QuantRole::FfnDown:
      if (ftype == kIQ3_M && (layer < n_layer / 8 || (n_expert == 8 && use_more_bits(layer, n_layer))))
        return GgmlType::Q4_K;
      return ty;
    case QuantRole::AttnOutput:
      if (n_expert == 8) return GgmlType::Q5_K;
      if (ftype == kIQ3_XXS) return GgmlType::IQ3_S;
      if (ftype == kIQ3_M) return GgmlType::Q4_K;
      return ty;
    case QuantRole::FfnGate:
    case QuantRole::FfnUp:
      if (ftype == kIQ3_XS && layer >= n_layer / 8 && layer < 7 * n_layer / 8) return GgmlType::IQ3_XXS;
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
      // The output matrix (token_embd when tied) gets Q6_K unless the preset is Q8_0, and Q5_K in
      // the 1-2-bit and IQ3_XXS mixes.
      if (ncols % kernels::QK_K != 0)
        ty = GgmlType::Q8_0;
      else if (is_iq12_mix(preset.file_type) || preset.file_type == kIQ3_XXS)
        ty = GgmlType::Q5_K;
      else if (ty != GgmlType::Q8_0)
        ty = GgmlType::Q6_K;
    } else if (preset.k_mix && (role == QuantRole::AttnV || role == QuantRole::FfnDown) &&
               use_more_bits(layer, n_layer)) {
      ty = GgmlType::Q6_K;
    } else if (is_iq12_mix(preset.file_type) || is_iq3_mix(preset.file_type)) {
      ty = iq_mix(preset.file_type, ty, role, layer, n_layer, n_gqa, hp.n_expert, llama_70b);
    } else if (!preset.k_mix) {
      ty = low_bit_mix(preset.file_type, ty, role, layer, n_layer, n_gqa, hp.n_expert, llama_70b);
    }
  }
  return fallback_for_row(ty, ncols);
}

}  // namespace clusterctl::model
