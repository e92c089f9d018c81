#include "worker/model/synth.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numbers>

#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"
#include "worker/gguf/gguf_writer.h"
#include "worker/kernels/blocks.h"
#include "worker/kernels/kernels.h"
#include "worker/kernels/thread_pool.h"
#include "worker/model/architecture.h"
#include "worker/model/quant_plan.h"
#include "worker/model/tensor_table.h"

namespace clusterctl::model {
namespace {

using gguf::GgmlType;

// ------------------------------------------------------------------ random numbers

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t hash_name(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Fills x with N(mean, stddev) values. Each row has its own stream (seed, tensor, row), so a
// tensor's values do not depend on how rows are split between threads or chunks.
void gaussian_row(uint64_t seed, uint64_t tensor_hash, uint64_t row, float mean, float stddev, float* x, uint64_t n) {
  uint64_t state = seed ^ tensor_hash;
  state = splitmix64(state) ^ (row * 0xd1b54a32d192ed03ull);
  for (uint64_t i = 0; i < n; i += 2) {
    // Box-Muller on two uniforms in (0, 1]. This exact stream (double precision, two draws per
    // pair) is what the committed reference logits were derived from: changing it changes every
    // synthetic file, and tests/data/reference must then be derived again.
    const double u1 = (static_cast<double>(splitmix64(state) >> 11) + 1.0) * 0x1p-53;
    const double u2 = static_cast<double>(splitmix64(state) >> 11) * 0x1p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double a = 2.0 * std::numbers::pi * u2;
    x[i] = mean + stddev * static_cast<float>(r * std::cos(a));
    if (i + 1 < n) x[i + 1] = mean + stddev * static_cast<float>(r * std::sin(a));
  }
}

// Llama 3's per-frequency RoPE divisors (what convert_hf_to_gguf stores as rope_freqs.weight).
std::vector<float> llama3_rope_factors(const SynthShape& s) {
  const uint32_t dim = s.head_size();
  const double low_wavelen = s.rope_original_ctx / s.rope_low_freq_factor;
  const double high_wavelen = s.rope_original_ctx / s.rope_high_freq_factor;
  std::vector<float> f;
  for (uint32_t i = 0; i < dim; i += 2) {
    const double freq = 1.0 / std::pow(static_cast<double>(s.rope_base), static_cast<double>(i) / dim);
    const double wavelen = 2 * std::numbers::pi / freq;
    if (wavelen < high_wavelen) {
      f.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      f.push_back(s.rope_scale_factor);
    } else {
      const double smooth =
          (s.rope_original_ctx / wavelen - s.rope_low_freq_factor) / (s.rope_high_freq_factor - s.rope_low_freq_factor);
      f.push_back(static_cast<float>(1.0 / ((1 - smooth) / s.rope_scale_factor + smooth)));
    }
  }
  return f;
}

// How each tensor's values are drawn. Matrices use std 1/sqrt(fan_in), so every projection keeps
// activations at unit scale through the layers (for 2048 wide that is ≈0.022, the usual 0.02
// init); the embedding/output matrix uses 1.5/sqrt(n_embd), giving logits of std ≈1.5: a spread
// distribution with a definite top token. Norm weights are ≈1, biases small.
struct Init {
  float mean = 0, stddev = 0;
  std::vector<float> fixed = {};  // exact values (rope factors) instead of random ones
  // deepseek2's attn_k_b / attn_v_b: the values the fused attn_kv_b of the same layer would hold
  // (`from`), rearranged per head as the converter does, so both layouts hold the same weights.
  enum class KvB : uint8_t { None, Keys, Values } kv_b = KvB::None;
  std::string from = {};
  uint64_t nope = 0, dv = 0;
};

struct Planned {
  SynthTensor t;
  QuantRole role;
  Init init;
};

// The hyperparameters a file of this shape will carry, for its architecture's tensor table.
HParams hparams_of(const SynthShape& s, uint32_t n_vocab) {
  HParams hp;
  hp.arch = s.arch;
  hp.n_embd = s.n_embd, hp.n_layer = s.n_layer, hp.n_head = s.n_head, hp.n_head_kv = s.n_head_kv;
  hp.head_dim = s.head_size(), hp.rope_dim = s.head_size();
  hp.n_ff = s.n_ff, hp.n_expert = s.n_expert, hp.n_expert_used = s.n_expert_used;
  hp.n_vocab = n_vocab;
  if (s.kv_lora_rank > 0) {
    hp.head_dim_k = s.head_size(), hp.head_dim = s.head_dim_v, hp.rope_dim = s.rope_dim;
    hp.q_lora_rank = s.q_lora_rank, hp.kv_lora_rank = s.kv_lora_rank, hp.kv_b_split = s.kv_b_split;
    hp.n_ff_dense = s.n_ff_dense, hp.n_layer_dense_lead = s.n_layer_dense_lead;
    hp.n_expert_shared = s.n_expert_shared;
  }
  return hp;
}

std::vector<Planned> plan(const SynthShape& s, const SynthType& ty, uint32_t n_vocab, bool pure) {
  const HParams hp = hparams_of(s, n_vocab);
  const float emb_std = 1.5f / std::sqrt(static_cast<float>(s.n_embd));
  const Init norm{.mean = 1.0f, .stddev = 0.05f};
  const Init bias{.mean = 0.0f, .stddev = 0.1f};
  std::vector<Planned> out;
  for (TensorSpec& t : find_architecture(s.arch, s.name).tensors(hp)) {
    if (t.kind == TensorKind::RopeFreqs && !(s.rope_scale_factor > 0 && !s.rope_yarn)) continue;
    if (t.kind == TensorKind::Output && s.tied_embeddings) continue;
    if (t.kind == TensorKind::FfnExpProbsB && !s.expert_probs_bias) continue;
    const QuantRole role = quant_role(t, s.tied_embeddings);
    Init init{.mean = 0.0f, .stddev = 1.0f / std::sqrt(static_cast<float>(t.shape[0]))};  // a matrix: by its fan-in
    switch (t.kind) {
      case TensorKind::TokenEmbd:
      case TensorKind::Output:
        init = Init{.mean = 0, .stddev = emb_std};
        break;
      case TensorKind::RopeFreqs:
        init = Init{.fixed = llama3_rope_factors(s)};
        break;
      case TensorKind::AttnQBias:
      case TensorKind::AttnKBias:
      case TensorKind::AttnVBias:
      case TensorKind::FfnExpProbsB:
        init = bias;
        break;
      case TensorKind::AttnKB:
      case TensorKind::AttnVB:
        init = Init{.stddev = 1.0f / std::sqrt(static_cast<float>(s.kv_lora_rank)),
                    .kv_b = t.kind == TensorKind::AttnKB ? Init::KvB::Keys : Init::KvB::Values,
                    .from = tensor_name(TensorKind::AttnKvB, t.layer),
                    .nope = s.head_size() - s.rope_dim,
                    .dv = s.head_dim_v};
        break;
      default:
        if (t.shape.size() == 1) init = norm;  // the norms' weights
    }
    const GgmlType type =
        t.shape.size() == 1 ? GgmlType::F32 : choose_quant_type(ty, role, std::max(t.layer, 0), hp, t.shape[0], pure);
    out.push_back({{t.name(), type, std::move(t.shape)}, role, std::move(init)});
  }
  return out;
}

// ------------------------------------------------------------------ vocabulary

uint32_t vocab_size_of(const gguf::GgufFile& vocab) {
  const gguf::Value* tokens = vocab.find("tokenizer.ggml.tokens");
  if (!tokens || tokens->type != gguf::ValueType::ARRAY)
    throw Error(vocab.path() +
                ": has no tokenizer.ggml.tokens array: not a vocabulary GGUF "
                "(use e.g. ggml-vocab-llama-bpe.gguf from llama.cpp's models/ folder)");
  return static_cast<uint32_t>(tokens->as_array().items.size());
}

// With no vocabulary file: a minimal SentencePiece vocabulary of our own (<unk>, <s>, </s>,
// the 256 byte-fallback tokens, "▁" and the printable ASCII characters), so a fresh machine
// can make a runnable model without any download. Any text tokenizes (bytes as fallback).
struct BuiltinVocab {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};  // UNKNOWN, CONTROL, CONTROL
  std::vector<float> scores = {0, 0, 0};
};

BuiltinVocab builtin_vocab() {
  BuiltinVocab v;
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    v.tokens.push_back(buf), v.types.push_back(6), v.scores.push_back(0);  // BYTE
  }
  v.tokens.push_back("\xe2\x96\x81"), v.types.push_back(1), v.scores.push_back(-1);
  for (char c = 33; c < 127; ++c)
    v.tokens.push_back(std::string(1, c)), v.types.push_back(1), v.scores.push_back(-2.0f - static_cast<float>(c));
  return v;
}

void add_builtin_vocab(gguf::GgufWriter& w, const BuiltinVocab& v) {
  w.add_kv("tokenizer.ggml.model", gguf::value_string("llama"));
  w.add_kv("tokenizer.ggml.tokens", gguf::value_string_array(v.tokens));
  w.add_kv("tokenizer.ggml.scores", gguf::value_f32_array(v.scores));
  w.add_kv("tokenizer.ggml.token_type", gguf::value_i32_array(v.types));
  w.add_kv("tokenizer.ggml.unknown_token_id", gguf::value_u32(0));
  w.add_kv("tokenizer.ggml.bos_token_id", gguf::value_u32(1));
  w.add_kv("tokenizer.ggml.eos_token_id", gguf::value_u32(2));
  w.add_kv("tokenizer.ggml.add_bos_token", gguf::value_bool(true));
  w.add_kv("tokenizer.ggml.add_eos_token", gguf::value_bool(false));
}

// Extends the per-token arrays to n entries the way convert_hf_to_gguf pads Qwen vocabularies:
// "[PAD<i>]" tokens of type UNUSED (5).
void pad_vocab(gguf::GgufWriter& w, uint32_t from, uint32_t to) {
  constexpr int32_t kTokenTypeUnused = 5;
  auto extend = [&](const char* key, auto make) {
    const gguf::Value* v = w.find_kv(key);
    if (!v || v->type != gguf::ValueType::ARRAY) return;
    gguf::Value copy = *v;
    auto& arr = std::get<gguf::Array>(copy.v);
    if (arr.items.size() != from) return;
    for (uint32_t i = from; i < to; ++i) arr.items.push_back(make(i));
    w.set_kv(key, std::move(copy));
  };
  extend("tokenizer.ggml.tokens", [](uint32_t i) { return gguf::value_string("[PAD" + std::to_string(i) + "]"); });
  extend("tokenizer.ggml.token_type", [](uint32_t) { return gguf::value_i32(kTokenTypeUnused); });
  extend("tokenizer.ggml.scores", [](uint32_t) { return gguf::value_f32(0.0f); });
}

// ------------------------------------------------------------------ metadata

// deepseek2's keys as convert_hf_to_gguf writes them: files with attn_k_b/attn_v_b describe the
// latent as one MQA head (key = latent + RoPE part, value = latent) and the heads in the *_mla keys.
void add_latent_attention_hparams(gguf::GgufWriter& w, const SynthShape& s) {
  const std::string a = s.arch + ".";
  w.add_kv(a + "leading_dense_block_count", gguf::value_u32(s.n_layer_dense_lead));
  w.add_kv(a + "attention.q_lora_rank", gguf::value_u32(s.q_lora_rank));
  w.add_kv(a + "attention.kv_lora_rank", gguf::value_u32(s.kv_lora_rank));
  if (s.kv_b_split) {
    w.add_kv(a + "attention.head_count_kv", gguf::value_u32(1));
    w.add_kv(a + "attention.key_length", gguf::value_u32(s.kv_lora_rank + s.rope_dim));
    w.add_kv(a + "attention.value_length", gguf::value_u32(s.kv_lora_rank));
    w.add_kv(a + "attention.key_length_mla", gguf::value_u32(s.head_size()));
    w.add_kv(a + "attention.value_length_mla", gguf::value_u32(s.head_dim_v));
  } else {
    w.add_kv(a + "attention.head_count_kv", gguf::value_u32(s.n_head));
    w.add_kv(a + "attention.key_length", gguf::value_u32(s.head_size()));
    w.add_kv(a + "attention.value_length", gguf::value_u32(s.head_dim_v));
  }
  w.add_kv(a + "expert_shared_count", gguf::value_u32(s.n_expert_shared));
  w.add_kv(a + "expert_weights_scale", gguf::value_f32(s.expert_weights_scale));
  w.add_kv(a + "expert_weights_norm", gguf::value_bool(s.expert_weights_norm));
  w.add_kv(a + "expert_gating_func", gguf::value_u32(s.expert_sigmoid ? 2 : 1));
  if (s.n_expert_groups > 0) {
    w.add_kv(a + "expert_group_count", gguf::value_u32(s.n_expert_groups));
    w.add_kv(a + "expert_group_used_count", gguf::value_u32(s.n_group_used));
  }
}

void add_hparams(gguf::GgufWriter& w, const SynthShape& s, const SynthType& ty, uint32_t n_vocab, uint64_t seed) {
  const std::string a = s.arch + ".";
  w.add_kv("general.architecture", gguf::value_string(s.arch));
  w.add_kv("general.type", gguf::value_string("model"));
  w.add_kv("general.name",
           gguf::value_string("synthetic " + s.name + " (random weights shaped like " + s.description + ")"));
  w.add_kv("general.file_type", gguf::value_u32(ty.file_type));
  w.add_kv("general.quantization_version", gguf::value_u32(2));
  w.add_kv(a + "vocab_size", gguf::value_u32(n_vocab));
  w.add_kv(a + "context_length", gguf::value_u32(s.n_ctx));
  w.add_kv(a + "embedding_length", gguf::value_u32(s.n_embd));
  w.add_kv(a + "block_count", gguf::value_u32(s.n_layer));
  w.add_kv(a + "feed_forward_length", gguf::value_u32(s.n_ff_dense ? s.n_ff_dense : s.n_ff));
  if (s.n_expert) {
    w.add_kv(a + "expert_count", gguf::value_u32(s.n_expert));
    w.add_kv(a + "expert_used_count", gguf::value_u32(s.n_expert_used));
    if (s.n_ff_dense) w.add_kv(a + "expert_feed_forward_length", gguf::value_u32(s.n_ff));
  }
  w.add_kv(a + "attention.head_count", gguf::value_u32(s.n_head));
  if (s.kv_lora_rank > 0) {
    add_latent_attention_hparams(w, s);
  } else {
    w.add_kv(a + "attention.head_count_kv", gguf::value_u32(s.n_head_kv));
    w.add_kv(a + "attention.key_length", gguf::value_u32(s.head_size()));
    w.add_kv(a + "attention.value_length", gguf::value_u32(s.head_size()));
  }
  w.add_kv(a + "attention.layer_norm_rms_epsilon", gguf::value_f32(s.rms_eps));
  w.add_kv(a + "rope.freq_base", gguf::value_f32(s.rope_base));
  w.add_kv(a + "rope.dimension_count", gguf::value_u32(s.rope_dim ? s.rope_dim : s.head_size()));
  if (s.rope_yarn) {
    w.add_kv(a + "rope.scaling.type", gguf::value_string("yarn"));
    w.add_kv(a + "rope.scaling.factor", gguf::value_f32(s.rope_scale_factor));
    w.add_kv(a + "rope.scaling.original_context_length", gguf::value_u32(s.rope_original_ctx));
    if (s.rope_yarn_log_mul != 0)
      w.add_kv(a + "rope.scaling.yarn_log_multiplier", gguf::value_f32(s.rope_yarn_log_mul));
  }
  // Provenance: how to make this file again.
  w.add_kv("clusterctl.synth.shape", gguf::value_string(s.name));
  w.add_kv("clusterctl.synth.type", gguf::value_string(ty.name));
  w.add_kv("clusterctl.synth.seed", gguf::value_u64(seed));
}

std::string shape_string(const std::vector<uint64_t>& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? " x " : "") + std::to_string(shape[i]);
  return s;
}

}  // namespace

const std::vector<SynthType>& synth_types() { return quant_presets(); }

const SynthType& find_synth_type(std::string_view name) { return find_quant_preset(name); }

std::vector<SynthTensor> plan_synth_tensors(const SynthShape& shape, const SynthType& type, uint32_t n_vocab,
                                            bool pure) {
  std::vector<SynthTensor> out;
  for (auto& p : plan(shape, type, n_vocab, pure)) out.push_back(std::move(p.t));
  return out;
}

namespace {

// The metadata and vocabulary (the file's, or the built-in one); returns the vocabulary size.
uint32_t add_metadata(gguf::GgufWriter& w, const SynthOptions& o, const SynthShape& shape, const SynthType& type) {
  if (o.vocab_path.empty()) {
    if (shape.n_vocab != 0)
      throw Error("shape " + shape.name + " needs a vocabulary of " + std::to_string(shape.n_vocab) +
                  " tokens: pass --vocab VOCAB.gguf (e.g. ggml-vocab-llama-bpe.gguf)");
    const BuiltinVocab v = builtin_vocab();
    const uint32_t n_vocab = static_cast<uint32_t>(v.tokens.size());
    add_hparams(w, shape, type, n_vocab, o.seed);
    add_builtin_vocab(w, v);
    return n_vocab;
  }
  gguf::GgufFile vocab(o.vocab_path);
  const uint32_t file_vocab = vocab_size_of(vocab);
  const uint32_t n_vocab = shape.n_vocab ? shape.n_vocab : file_vocab;
  const bool padding = file_vocab < n_vocab && o.pad_vocab;
  if (file_vocab != n_vocab && !padding) {
    std::string fix = file_vocab < n_vocab ? ", or pass --pad-vocab to pad it with unused tokens" : "";
    throw Error(o.vocab_path + " has " + std::to_string(file_vocab) + " tokens but shape " + shape.name + " needs " +
                std::to_string(n_vocab) +
                ": use a vocabulary of that size (for Llama 3 shapes: "
                "ggml-vocab-llama-bpe.gguf)" +
                fix);
  }
  add_hparams(w, shape, type, n_vocab, o.seed);
  w.copy_kv(vocab, [](std::string_view key) { return key.starts_with("tokenizer."); });
  if (padding) pad_vocab(w, file_vocab, n_vocab);
  return n_vocab;
}

// Rows [first, first + n) of attn_k_b ([nope x kv_lora x heads]: head h's key rows of the fused
// attn_kv_b, transposed) or attn_v_b ([kv_lora x dv x heads]: its value rows as they are).
void kv_b_rows(const Init& init, const std::vector<uint64_t>& shape, uint64_t seed, uint64_t first, uint64_t n,
               GgmlType type, uint8_t* out, kernels::ThreadPool& pool) {
  const uint64_t ncols = shape[0], per_head = shape[1], kvl = init.kv_b == Init::KvB::Keys ? shape[1] : shape[0];
  const uint64_t fused_per_head = init.nope + init.dv, row_bytes = gguf::row_bytes(type, ncols);
  const uint64_t from_hash = hash_name(init.from);
  pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e) {
    std::vector<float> keys, row(ncols);  // keys: one head's nope key rows of the fused tensor
    uint64_t keys_head = UINT64_MAX;
    for (int64_t r = b; r < e; ++r) {
      const uint64_t i = first + static_cast<uint64_t>(r), h = i / per_head, j = i % per_head;
      if (init.kv_b == Init::KvB::Values) {
        gaussian_row(seed, from_hash, h * fused_per_head + init.nope + j, init.mean, init.stddev, row.data(), ncols);
      } else {  // element d of latent row j is key row d's element j
        if (keys_head != h) {
          keys.resize(ncols * kvl);
          for (uint64_t d = 0; d < ncols; ++d)
            gaussian_row(seed, from_hash, h * fused_per_head + d, init.mean, init.stddev, &keys[d * kvl], kvl);
          keys_head = h;
        }
        for (uint64_t d = 0; d < ncols; ++d) row[d] = keys[d * kvl + j];
      }
      kernels::quantize_row(type, row.data(), out + r * row_bytes, static_cast<int64_t>(ncols));
    }
  });
}

// Each tensor's rows drawn and quantised while the writer writes them; `planned` must outlive it.
void add_tensors(gguf::GgufWriter& w, const std::vector<Planned>& planned, uint64_t seed, uint64_t distinct_rows,
                 kernels::ThreadPool& pool) {
  for (const auto& p : planned) {
    const uint64_t ncols = p.t.shape[0];
    const GgmlType t = p.t.type;
    const uint64_t row_bytes = gguf::row_bytes(t, ncols);
    const uint64_t name_hash = hash_name(p.t.name);
    const Init* init = &p.init;
    const std::vector<uint64_t>* shape = &p.t.shape;
    gguf::TensorSource source = [=, &pool](uint64_t first, uint64_t n, uint8_t* out) {
      if (!init->fixed.empty()) {  // 1-D, F32
        std::memcpy(out, init->fixed.data() + first * ncols, n * ncols * sizeof(float));
        return;
      }
      if (init->kv_b != Init::KvB::None) {
        kv_b_rows(*init, *shape, seed, first, n, t, out, pool);
        return;
      }
      // Repeated rows: row first+r is row (first+r) % distinct, so only the chunk's first
      // `distinct` rows are drawn and the rest copied from the row `distinct` before them.
      const uint64_t drawn = distinct_rows ? std::min<uint64_t>(n, distinct_rows) : n;
      pool.parallel_for(static_cast<int64_t>(drawn), [&](int64_t b, int64_t e) {
        std::vector<float> row(ncols);
        for (int64_t r = b; r < e; ++r) {
          const uint64_t row_index = distinct_rows ? (first + r) % distinct_rows : first + r;
          if (kernels::is_iq_grid_type(t)) {  // no quantiser without an importance matrix: random blocks
            uint64_t state = seed ^ name_hash;
            const uint64_t row_seed = splitmix64(state) ^ (row_index * 0xd1b54a32d192ed03ull);
            kernels::random_iq_blocks(t, row_seed, init->stddev, out + r * row_bytes, static_cast<int64_t>(ncols));
            continue;
          }
          gaussian_row(seed, name_hash, row_index, init->mean, init->stddev, row.data(), ncols);
          kernels::quantize_row(t, row.data(), out + r * row_bytes, static_cast<int64_t>(ncols));
        }
      });
      for (uint64_t r = drawn; r < n; ++r) std::memcpy(out + r * row_bytes, out + (r - drawn) * row_bytes, row_bytes);
    };
    w.add_tensor(p.t.name, t, p.t.shape, std::move(source));
  }
}

// Writes the file (or its parts), a line per tensor; returns the bytes written.
uint64_t write_logged(const gguf::GgufWriter& w, const SynthOptions& o,
                      const std::function<void(const std::string&)>& log) {
  const auto start = std::chrono::steady_clock::now();
  const size_t n_tensors = w.tensors().size();
  const gguf::GgufWriter::Progress progress = [&](size_t i, uint64_t done, uint64_t total) {
    const auto& t = w.tensors()[i];
    char line[256];
    std::snprintf(line, sizeof line, "[%4zu/%zu] %-28s %-5s %-16s %5.1f%%", i + 1, n_tensors, t.name.c_str(),
                  std::string(gguf::type_name(t.type)).c_str(), shape_string(t.shape).c_str(),
                  total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0);
    log(line);
  };
  uint64_t size = 0;
  std::string written = o.out_path;
  if (o.parts > 1) {
    const auto paths = w.write_split(o.out_path, o.parts, progress);
    for (const auto& p : paths) size += std::filesystem::file_size(p);
    written = paths.front() + " .. " + paths.back();
  } else {
    size = w.write(o.out_path, progress);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char tail[512];
  std::snprintf(tail, sizeof tail, "wrote %s: %.1f MiB in %.1f s%s", written.c_str(), size / 1048576.0, secs,
                o.sparse ? " (sparse: the tensor data is a hole, for planning only)" : "");
  log(tail);
  return size;
}

}  // namespace

uint64_t synth_model(const SynthOptions& o) {
  const SynthShape& shape = find_synth_shape(o.shape);
  const SynthType& type = find_synth_type(o.type);
  auto log = [&](const std::string& line) {
    if (o.log) o.log(line);
  };
  if (o.out_path.empty()) throw Error("no output file given");
  gguf::GgufWriter w;
  const uint32_t n_vocab = add_metadata(w, o, shape, type);
  kernels::ThreadPool pool(o.threads > 0 ? o.threads : kernels::default_thread_count());
  const std::vector<Planned> planned = plan(shape, type, n_vocab, o.pure);  // the sources point into it
  add_tensors(w, planned, o.seed, o.distinct_rows, pool);
  w.set_sparse(o.sparse);

  uint64_t params = 0;
  for (const auto& t : w.tensors()) params += t.n_elements;
  char head[256];
  std::snprintf(head, sizeof head, "synth: %s (%s), %s, %u tokens, %.1fM parameters, %zu tensors, seed %llu -> %s",
                shape.name.c_str(), shape.arch.c_str(), type.name.c_str(), n_vocab, params / 1e6, w.tensors().size(),
                static_cast<unsigned long long>(o.seed), o.out_path.c_str());
  log(head);
  std::string random_types;
  for (const auto& t : w.tensors())
    if (kernels::is_iq_grid_type(t.type) && random_types.find(gguf::type_name(t.type)) == std::string::npos)
      random_types += (random_types.empty() ? "" : ", ") + std::string(gguf::type_name(t.type));
  if (!random_types.empty())
    log("synth: the " + random_types +
        " tensors are random valid blocks (random grid indices, signs and scales, each block scaled to the "
        "tensor's RMS), not quantised weights: their quantiser needs an importance matrix");
  return write_logged(w, o, log);
}

}  // namespace clusterctl::model
