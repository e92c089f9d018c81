#include "worker/model/tensor_table.h"

#include <array>

namespace clusterctl::model {
namespace {

// GGUF names, indexed by TensorKind; a layer's carry "blk.N." in front.
constexpr std::array<std::string_view, kTensorKinds> kNames = {
    "token_embd.weight",   "rope_freqs.weight",     "output_norm.weight",    "output.weight",
    "attn_norm.weight",    "attn_q.weight",         "attn_k.weight",         "attn_v.weight",
    "attn_q.bias",         "attn_k.bias",           "attn_v.bias",           "attn_q_norm.weight",
    "attn_k_norm.weight",  "attn_output.weight",    "attn_q_a.weight",       "attn_q_a_norm.weight",
    "attn_q_b.weight",     "attn_kv_a_mqa.weight",  "attn_kv_a_norm.weight", "attn_kv_b.weight",
    "attn_k_b.weight",     "attn_v_b.weight",       "ffn_norm.weight",       "ffn_gate.weight",
    "ffn_up.weight",       "ffn_down.weight",       "ffn_gate_inp.weight",   "ffn_gate_exps.weight",
    "ffn_up_exps.weight",  "ffn_down_exps.weight",  "exp_probs_b.bias",      "ffn_gate_shexp.weight",
    "ffn_up_shexp.weight", "ffn_down_shexp.weight",
};
static_assert(!kNames.back().empty(), "a TensorKind without a name");

Range all_of(uint64_t n) { return {0, static_cast<int64_t>(n)}; }
Range times(const Range& r, uint64_t unit) {
  return {r.begin * static_cast<int64_t>(unit), r.end * static_cast<int64_t>(unit)};
}

}  // namespace

std::string tensor_name(TensorKind kind, int layer) {
  const std::string_view name = kNames[static_cast<size_t>(kind)];
  if (layer < 0) return std::string(name);
  return "blk." + std::to_string(layer) + "." + std::string(name);
}

std::vector<uint64_t> TensorSlice::shape() const {
  std::vector<uint64_t> s;
  for (const Range& r : dims) s.push_back(static_cast<uint64_t>(r.size()));
  return s;
}

int TensorSlice::cut_dim(const std::vector<uint64_t>& whole) const {
  for (int d = 0; d < 2 && d < static_cast<int>(dims.size()); ++d)
    if (dims[d] != all_of(whole[d])) return d;
  return -1;
}

TensorSlice slice_of(const TensorSpec& spec, const Partition& part, const HParams& hp) {
  TensorSlice s;
  for (uint64_t n : spec.shape) s.dims.push_back(all_of(n));
  // Rows are the last dimension of a 1-D or 2-D tensor.
  const size_t rows = spec.shape.size() == 1 ? 0 : 1;
  switch (spec.split) {
    case Split::Replicated:
      break;
    case Split::QHeadRows:
      s.dims[rows] = times(part.q_heads, spec.unit);
      break;
    case Split::KvHeadRows:
      s.dims[rows] = times(part.kv_heads(hp), spec.unit);
      break;
    case Split::QHeadColumns:
      s.dims[0] = times(part.q_heads, spec.unit);
      break;
    case Split::FfnRows:
      s.dims[rows] = part.ffn;
      break;
    case Split::FfnColumns:
      s.dims[0] = part.ffn;
      break;
    case Split::VocabRows:
      s.dims[rows] = part.vocab;
      break;
    case Split::ExpertFfnRows:
      s.dims[1] = part.ffn, s.dims[2] = part.experts;
      break;
    case Split::ExpertFfnColumns:
      s.dims[0] = part.ffn, s.dims[2] = part.experts;
      break;
    case Split::HeadSlices:
      s.dims[2] = part.q_heads;
      break;
    case Split::DenseFfnRows:
      s.dims[rows] = part.dense_ffn;
      break;
    case Split::DenseFfnColumns:
      s.dims[0] = part.dense_ffn;
      break;
    case Split::SharedFfnRows:
      s.dims[rows] = part.shared_ffn;
      break;
    case Split::SharedFfnColumns:
      s.dims[0] = part.shared_ffn;
      break;
  }
  return s;
}

void TensorList::add(TensorKind kind, int layer, std::vector<uint64_t> shape, Split split, uint64_t unit) {
  const bool one_d = shape.size() == 1;
  out_.push_back({kind, layer, std::move(shape), split, unit, false, one_d});
}

void TensorList::token_embedding() {
  add(TensorKind::TokenEmbd, -1, {hp_.n_embd, hp_.n_vocab}, Split::Replicated);
  add(TensorKind::RopeFreqs, -1, {hp_.rope_dim / 2}, Split::Replicated);
  mark_optional();
}

void TensorList::attention(int l, AttentionOptions o) {
  const uint64_t E = hp_.n_embd, D = hp_.head_dim, Q = uint64_t{hp_.n_head} * D, KV = uint64_t{hp_.n_head_kv} * D;
  add(TensorKind::AttnNorm, l, {E}, Split::Replicated);
  add(TensorKind::AttnQ, l, {E, Q}, Split::QHeadRows, D);
  add(TensorKind::AttnK, l, {E, KV}, Split::KvHeadRows, D);
  add(TensorKind::AttnV, l, {E, KV}, Split::KvHeadRows, D);
  if (o.qkv_bias) {
    add(TensorKind::AttnQBias, l, {Q}, Split::QHeadRows, D);
    add(TensorKind::AttnKBias, l, {KV}, Split::KvHeadRows, D);
    add(TensorKind::AttnVBias, l, {KV}, Split::KvHeadRows, D);
  }
  if (o.qk_norm) {
    add(TensorKind::AttnQNorm, l, {D}, Split::Replicated);
    add(TensorKind::AttnKNorm, l, {D}, Split::Replicated);
  }
  add(TensorKind::AttnOutput, l, {Q, E}, Split::QHeadColumns, D);
}

void TensorList::feed_forward(int l) {
  const uint64_t E = hp_.n_embd, F = hp_.n_ff, X = hp_.n_expert;
  add(TensorKind::FfnNorm, l, {E}, Split::Replicated);
  if (X == 0) {
    add(TensorKind::FfnGate, l, {E, F}, Split::FfnRows);
    add(TensorKind::FfnUp, l, {E, F}, Split::FfnRows);
    add(TensorKind::FfnDown, l, {F, E}, Split::FfnColumns);
    return;
  }
  // Every rank routes every token, so every rank holds the whole router.
  add(TensorKind::FfnRouter, l, {E, X}, Split::Replicated);
  mark_floats();
  add(TensorKind::FfnGateExps, l, {E, F, X}, Split::ExpertFfnRows);
  add(TensorKind::FfnUpExps, l, {E, F, X}, Split::ExpertFfnRows);
  add(TensorKind::FfnDownExps, l, {F, E, X}, Split::ExpertFfnColumns);
}

void TensorList::output() {
  add(TensorKind::OutputNorm, -1, {hp_.n_embd}, Split::Replicated);
  add(TensorKind::Output, -1, {hp_.n_embd, hp_.n_vocab}, Split::VocabRows);
  mark_optional();  // absent: tied to token_embd
}

std::vector<TensorSpec> decoder_tensors(const HParams& hp, TensorList::AttentionOptions attention) {
  TensorList t(hp);
  t.token_embedding();
  for (int l = 0; l < static_cast<int>(hp.n_layer); ++l) {
    t.attention(l, attention);
    t.feed_forward(l);
  }
  t.output();
  return t.take();
}

}  // namespace clusterctl::model
