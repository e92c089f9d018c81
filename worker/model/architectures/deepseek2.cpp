// DeepSeek-V2 / V2-Lite / V3 / R1 and Kimi-K2 (general.architecture "deepseek2"): multi-head latent
// attention and a mixture of experts with shared experts.
//  - Attention: the query through a low-rank pair with a norm between (attn_q_a, attn_q_a_norm,
//    attn_q_b), or one projection where q_lora_rank is 0 (V2-Lite); keys and values from one
//    compressed latent per token (attn_kv_a_mqa gives it and a RoPE key shared by all heads; the
//    latent is normed by attn_kv_a_norm). The latent expands to each head's key and value through
//    attn_kv_b (older files: one matrix, nope key rows then value rows per head) or attn_k_b and
//    attn_v_b (newer: per head, the key part already transposed). ForwardPass::latent_attention
//    attends in the latent (the expansion absorbed into query and output), so the cache holds the
//    latent and the RoPE key per token (KvCache), the same on every rank.
//  - Feed-forward: a dense SwiGLU in the leading_dense_block_count first layers; after them, routed
//    experts (softmax or sigmoid scores, V3's score-correction bias exp_probs_b for the choice only,
//    group-limited choice, weights normalised and scaled) beside always-used shared experts.
// Head sizes: a query/key head is key_length_mla (or key_length in fused files) of which the last
// rope.dimension_count rotate (adjacent pairs); a value head value_length_mla (value_length).
#include <cmath>
#include <cstring>

#include "worker/common/error.h"
#include "worker/model/architecture.h"
#include "worker/model/forward.h"
#include "worker/model/weights.h"

namespace clusterctl::model {
namespace {

uint32_t key_u32(const gguf::GgufFile& f, const std::string& suffix, std::optional<uint32_t> fallback) {
  const std::string key = f.arch_key(suffix);
  const auto v = f.get_int(key);
  if (!v) {
    if (fallback) return *fallback;
    throw Error(f.path() + ": metadata key '" + key + "' is missing: the file is not a complete deepseek2 model");
  }
  if (*v < 0 || *v > INT32_MAX)
    throw Error(f.path() + ": metadata '" + key + "' = " + std::to_string(*v) + " is out of range");
  return static_cast<uint32_t>(*v);
}

void read_hparams(const gguf::GgufFile& f, HParams& hp) {
  auto bad = [&](const std::string& what) {
    throw Error(f.path() + ": " + what + "; the file is not a valid deepseek2 model");
  };
  hp.n_layer_dense_lead = key_u32(f, "leading_dense_block_count", 0);
  hp.n_ff_dense = key_u32(f, "feed_forward_length", 0);
  hp.q_lora_rank = key_u32(f, "attention.q_lora_rank", 0);
  hp.kv_lora_rank = key_u32(f, "attention.kv_lora_rank", std::nullopt);
  hp.n_expert_shared = key_u32(f, "expert_shared_count", 0);
  hp.n_expert_groups = key_u32(f, "expert_group_count", 0);
  hp.n_group_used = key_u32(f, "expert_group_used_count", 0);
  hp.expert_weights_norm = f.get_bool(f.arch_key("expert_weights_norm")).value_or(false);
  hp.expert_weights_scale = static_cast<float>(f.get_float(f.arch_key("expert_weights_scale")).value_or(0.0));
  switch (key_u32(f, "expert_gating_func", 0)) {
    case 0:  // absent: DeepSeek-V2's files predate the key
    case 1:
      hp.expert_gating = HParams::Gating::Softmax;
      break;
    case 2:
      hp.expert_gating = HParams::Gating::Sigmoid;
      break;
    default:
      bad("'" + f.arch_key("expert_gating_func") + "' is neither 1 (softmax) nor 2 (sigmoid)");
  }
  // The converter stores 0.1 x DeepSeek's mscale_all_dim; llama.cpp cancels the 0.1 the same way.
  if (auto v = f.get_float(f.arch_key("rope.scaling.yarn_log_multiplier")))
    hp.rope_yarn_log_mul = static_cast<float>(*v) / 0.1f;
  // Newer files describe the latent as one MQA head (key_length = latent + RoPE part) and give
  // the per-head sizes in the *_mla keys; older ones give the per-head sizes directly.
  const bool split_layout = f.find(f.arch_key("attention.key_length_mla")) != nullptr;
  hp.head_dim_k = key_u32(f, split_layout ? "attention.key_length_mla" : "attention.key_length", std::nullopt);
  hp.head_dim = key_u32(f, split_layout ? "attention.value_length_mla" : "attention.value_length", std::nullopt);
  hp.rope_dim = key_u32(f, "rope.dimension_count", std::nullopt);
  hp.n_head_kv = hp.n_head;  // every head reads the one latent: heads split one by one
  if (hp.kv_lora_rank == 0) bad("'" + f.arch_key("attention.kv_lora_rank") + "' is 0");
  if (hp.head_dim == 0 || hp.rope_dim == 0 || hp.rope_dim % 2 != 0 || hp.head_dim_k <= hp.rope_dim)
    bad("key head " + std::to_string(hp.head_dim_k) + ", value head " + std::to_string(hp.head_dim) +
        " and RoPE part " + std::to_string(hp.rope_dim) +
        " do not fit (the RoPE part must be even and smaller than the key head)");
  if (hp.n_expert == 0) bad("'" + f.arch_key("expert_count") + "' is missing or 0");
  if (hp.n_layer_dense_lead > hp.n_layer) bad("more leading dense layers than layers");
  if (hp.n_layer_dense_lead > 0 && hp.n_ff_dense == 0) bad("'" + f.arch_key("feed_forward_length") + "' is missing");
  if (hp.n_expert_groups > 1 &&
      (hp.n_expert % hp.n_expert_groups != 0 || hp.n_group_used == 0 || hp.n_group_used >= hp.n_expert_groups ||
       hp.n_expert_used > hp.n_group_used * (hp.n_expert / hp.n_expert_groups)))
    bad(std::to_string(hp.n_expert) + " experts in " + std::to_string(hp.n_expert_groups) + " groups of which " +
        std::to_string(hp.n_group_used) + " are used cannot route " + std::to_string(hp.n_expert_used) +
        " experts per token");
  if (f.find_tensor("blk.0.attn_kv_b.weight") == nullptr && f.find_tensor("blk.0.attn_k_b.weight") == nullptr)
    bad("it has neither attn_kv_b nor attn_k_b/attn_v_b tensors");
  hp.kv_b_split = f.find_tensor("blk.0.attn_k_b.weight") != nullptr;
}

std::vector<TensorSpec> tensors(const HParams& hp) {
  TensorList t(hp);
  const uint64_t E = hp.n_embd, H = hp.n_head, DK = hp.head_dim_k, DV = hp.head_dim, R = hp.rope_dim;
  const uint64_t nope = DK - R, QL = hp.q_lora_rank, KVL = hp.kv_lora_rank;
  const uint64_t F = hp.n_ff, X = hp.n_expert, FS = uint64_t{hp.n_ff} * hp.n_expert_shared;
  t.token_embedding();
  for (int l = 0; l < static_cast<int>(hp.n_layer); ++l) {
    t.add(TensorKind::AttnNorm, l, {E}, Split::Replicated);
    if (QL > 0) {
      // Every rank computes the whole low-rank query (it is small), then its heads of it.
      t.add(TensorKind::AttnQA, l, {E, QL}, Split::Replicated);
      t.add(TensorKind::AttnQANorm, l, {QL}, Split::Replicated);
      t.add(TensorKind::AttnQB, l, {QL, H * DK}, Split::QHeadRows, DK);
    } else {
      t.add(TensorKind::AttnQ, l, {E, H * DK}, Split::QHeadRows, DK);
    }
    t.add(TensorKind::AttnKvAMqa, l, {E, KVL + R}, Split::Replicated);
    t.add(TensorKind::AttnKvANorm, l, {KVL}, Split::Replicated);
    if (hp.kv_b_split) {
      t.add(TensorKind::AttnKB, l, {nope, KVL, H}, Split::HeadSlices);
      t.add(TensorKind::AttnVB, l, {KVL, DV, H}, Split::HeadSlices);
    } else {
      t.add(TensorKind::AttnKvB, l, {KVL, H * (nope + DV)}, Split::QHeadRows, nope + DV);
    }
    t.add(TensorKind::AttnOutput, l, {H * DV, E}, Split::QHeadColumns, DV);
    t.add(TensorKind::FfnNorm, l, {E}, Split::Replicated);
    if (l < static_cast<int>(hp.n_layer_dense_lead)) {
      const uint64_t FD = hp.n_ff_dense;
      t.add(TensorKind::FfnGate, l, {E, FD}, Split::DenseFfnRows);
      t.add(TensorKind::FfnUp, l, {E, FD}, Split::DenseFfnRows);
      t.add(TensorKind::FfnDown, l, {FD, E}, Split::DenseFfnColumns);
      continue;
    }
    t.add(TensorKind::FfnRouter, l, {E, X}, Split::Replicated);
    t.mark_floats();
    t.add(TensorKind::FfnExpProbsB, l, {X}, Split::Replicated);
    t.mark_optional();  // DeepSeek-V3's; V2 has none
    t.add(TensorKind::FfnGateExps, l, {E, F, X}, Split::ExpertFfnRows);
    t.add(TensorKind::FfnUpExps, l, {E, F, X}, Split::ExpertFfnRows);
    t.add(TensorKind::FfnDownExps, l, {F, E, X}, Split::ExpertFfnColumns);
    if (FS > 0) {
      t.add(TensorKind::FfnGateShexp, l, {E, FS}, Split::SharedFfnRows);
      t.add(TensorKind::FfnUpShexp, l, {E, FS}, Split::SharedFfnRows);
      t.add(TensorKind::FfnDownShexp, l, {FS, E}, Split::SharedFfnColumns);
    }
  }
  t.output();
  return t.take();
}

// A fused attn_kv_b holds, per head, nope rows that expand the latent to the key and DV rows
// that expand it to the value. Attending in the latent needs the key rows transposed (a matrix
// of kv_lora rows over the nope query values, as attn_k_b is stored): made once here. From F32,
// F16 and BF16 files it holds their exact values (F32, or F16 from F16); from a quantised file
// it is Q8_0, what llama-quantize makes of a split file's attn_k_b where it would be Q6_K (its
// 128 columns are no whole K-quant block): Q8_0's steps are a quarter of Q6_K's, so they add
// ~3 % to the weights' rounding error, and a DeepSeek-V2-Lite decode token reads 29 MB of key
// expansions instead of 108 MB in F32 (one thread: ~13 ms of a ~75 ms token in F32, ~5 ms in
// Q8_0). The value rows are used where they lie.
void split_kv_b(const HParams& hp, const Partition& part, ModelWeights& w) {
  const int64_t nope = hp.head_dim_k - hp.rope_dim, DV = hp.head_dim, KVL = hp.kv_lora_rank;
  for (LayerWeights& L : w.layers) {
    if (!L.has(TensorKind::AttnKvB)) continue;
    const kernels::Matrix kvb = L.matrix(TensorKind::AttnKvB);
    gguf::GgmlType kb_type = gguf::GgmlType::Q8_0;
    if (kvb.type == gguf::GgmlType::F32 || kvb.type == gguf::GgmlType::BF16) kb_type = gguf::GgmlType::F32;
    if (kvb.type == gguf::GgmlType::F16 || (kb_type == gguf::GgmlType::Q8_0 && nope % 32 != 0))
      kb_type = gguf::GgmlType::F16;
    const size_t kb_row = gguf::row_bytes(kb_type, static_cast<uint64_t>(nope));
    Weight& kb = L[TensorKind::AttnKB];
    Weight& vb = L[TensorKind::AttnVB];
    kb.present = vb.present = true;
    kb.experts.assign(hp.n_head, {});
    vb.experts.assign(hp.n_head, {});
    // One buffer for the layer's heads, which a decode token reads one after another.
    const size_t kb_bytes = static_cast<size_t>(KVL) * kb_row;
    kb.owned = allocate_large_buffer(kb_bytes * static_cast<size_t>(part.q_heads.size()));
    std::vector<float> row(KVL), t(KVL * nope);
    for (int64_t h = part.q_heads.begin; h < part.q_heads.end; ++h) {
      const int64_t first = (h - part.q_heads.begin) * (nope + DV);
      for (int64_t d = 0; d < nope; ++d) {
        kernels::dequantize_row(kvb.type, kvb.data + (first + d) * kvb.row_stride, row.data(), KVL);
        for (int64_t r = 0; r < KVL; ++r) t[r * nope + d] = row[r];
      }
      uint8_t* out = kb.owned.get() + (h - part.q_heads.begin) * kb_bytes;
      for (int64_t r = 0; r < KVL; ++r) {
        const float* src = &t[r * nope];
        uint8_t* dst = out + r * kb_row;
        if (kb_type == gguf::GgmlType::F32)
          std::memcpy(dst, src, kb_row);
        else if (kb_type == gguf::GgmlType::F16)
          for (int64_t d = 0; d < nope; ++d) reinterpret_cast<kernels::fp16_t*>(dst)[d] = kernels::fp32_to_fp16(src[d]);
        else
          kernels::quantize_activations(gguf::GgmlType::Q8_0, src, dst, nope);  // Q8_0 rows, as for any Q8_0 weight
      }
      kb.experts[h] = {kb_type, out, KVL, nope, kb_row};
      vb.experts[h] = {kvb.type, kvb.data + (first + nope) * kvb.row_stride, DV, KVL, kvb.row_stride};
    }
    L[TensorKind::AttnKvB] = Weight{};  // computed through the two above only
  }
}

void layer(ForwardPass& pass, int64_t il) {
  pass.latent_attention(il);
  pass.feed_forward(il);
}

}  // namespace

const Architecture& deepseek2_architecture() {
  static const Architecture a{.name = "deepseek2",
                              .rope = RopeLayout::Adjacent,
                              .experts_required = true,
                              .normalize_expert_weights = false,
                              .read_hparams = read_hparams,
                              .tensors = tensors,
                              .layer = layer,
                              .derive_weights = split_kv_b};
  return a;
}

}  // namespace clusterctl::model
