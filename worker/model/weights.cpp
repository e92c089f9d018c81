#include "worker/model/weights.h"

#include <cstring>

#include "worker/common/error.h"
#include "worker/common/mapped_file.h"
#include "worker/model/shard_file.h"

namespace clusterctl::model {
namespace {

using gguf::GgufFile;
using gguf::TensorInfo;

std::string shape_str(const std::vector<uint64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

class Loader {
 public:
  Loader(const GgufFile& f) : f_(f) {}

  const TensorInfo& tensor(const std::string& name, std::vector<uint64_t> shape) const {
    const TensorInfo* t = f_.find_tensor(name);
    if (!t) throw Error(f_.path() + ": tensor '" + name + "' is missing: the file is incomplete or not this architecture");
    if (t->shape != shape)
      throw Error(f_.path() + ": tensor '" + name + "' has shape " + shape_str(t->shape) + ", expected " +
                  shape_str(shape) + " from the model's metadata");
    if (!kernels::is_computable(t->type))
      throw Error(f_.path() + ": tensor '" + name + "' has type " + std::string(gguf::type_name(t->type)) +
                  ", which the engine does not compute (supported: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 "
                  "Q4_K Q5_K Q6_K); requantize the model to one of these");
    return *t;
  }

  std::vector<float> vector(const std::string& name, uint64_t n, uint64_t begin = 0, uint64_t count = 0) const {
    const TensorInfo& t = tensor(name, {n});
    if (count == 0) count = n;
    std::vector<float> all(n);
    kernels::dequantize_row(t.type, f_.tensor_data(t).data(), all.data(), static_cast<int64_t>(n));
    return {all.begin() + begin, all.begin() + begin + count};
  }

  // A whole tensor as floats (rows of shape[0] elements), whatever its type.
  std::vector<float> floats(const std::string& name, std::vector<uint64_t> shape) const {
    const TensorInfo& t = tensor(name, shape);
    const uint64_t cols = shape[0], n_rows = t.n_elements / cols;
    std::vector<float> out(t.n_elements);
    const uint8_t* src = f_.tensor_data(t).data();
    for (uint64_t r = 0; r < n_rows; ++r)
      kernels::dequantize_row(t.type, src + r * gguf::row_bytes(t.type, cols), &out[r * cols],
                              static_cast<int64_t>(cols));
    return out;
  }

  // Rows [r0, r1) of a [cols x rows] tensor, pointing into the map; with `expert` >= 0, of that
  // expert's matrix in a [cols x rows x n_experts] tensor.
  kernels::Matrix rows(const std::string& name, uint64_t cols, uint64_t total_rows, int64_t r0, int64_t r1,
                       int64_t expert = -1, uint64_t n_experts = 0) const {
    const TensorInfo& t = tensor(name, shape_of(cols, total_rows, expert, n_experts));
    kernels::Matrix m;
    m.type = t.type;
    m.cols = static_cast<int64_t>(cols);
    m.rows = r1 - r0;
    m.row_stride = gguf::row_bytes(t.type, cols);
    const uint64_t first = (expert < 0 ? 0 : static_cast<uint64_t>(expert) * total_rows) + static_cast<uint64_t>(r0);
    m.data = f_.tensor_bytes(t, m.row_stride * first, m.row_stride * m.rows).data();
    return m;
  }

  // Columns [c0, c1) of a [cols x rows] tensor: the whole tensor from the map when the slice is
  // everything, a strided view into the map when it is to be packed (pack_for_kernels reads it
  // once), else a copy (block-aligned, or the slice cannot be cut).
  kernels::Matrix columns(const std::string& name, uint64_t cols, uint64_t rows_n, int64_t c0, int64_t c1,
                          LargeBuffer& owned, int64_t expert = -1, uint64_t n_experts = 0) const {
    if (c0 == 0 && c1 == static_cast<int64_t>(cols)) return rows(name, cols, rows_n, 0, rows_n, expert, n_experts);
    const TensorInfo& t = tensor(name, shape_of(cols, rows_n, expert, n_experts));
    const int64_t block = gguf::type_traits(t.type).block_size;
    if (c0 % block != 0 || c1 % block != 0)
      throw Error(f_.path() + ": cannot cut columns [" + std::to_string(c0) + ", " + std::to_string(c1) + ") of '" +
                  name + "': " + std::string(gguf::type_name(t.type)) + " needs boundaries on multiples of " +
                  std::to_string(block) + "; choose a split aligned to the quantisation block");
    const size_t src_stride = gguf::row_bytes(t.type, cols);
    const size_t skip = gguf::row_bytes(t.type, c0);
    const size_t len = gguf::row_bytes(t.type, c1 - c0);
    const uint8_t* src =
        f_.tensor_data(t).data() + (expert < 0 ? 0 : static_cast<uint64_t>(expert) * rows_n * src_stride);
    kernels::Matrix m;
    m.type = t.type;
    m.data = src + skip;
    m.rows = static_cast<int64_t>(rows_n);
    m.cols = c1 - c0;
    m.row_stride = src_stride;
    if (kernels::should_pack(m)) return m;
    owned = allocate_large_buffer(len * rows_n);  // every byte is copied in below
    for (uint64_t r = 0; r < rows_n; ++r) std::memcpy(owned.get() + r * len, src + r * src_stride + skip, len);
    m.data = owned.get();
    m.row_stride = len;
    return m;
  }

 private:
  static std::vector<uint64_t> shape_of(uint64_t cols, uint64_t rows, int64_t expert, uint64_t n_experts) {
    if (expert < 0) return {cols, rows};
    return {cols, rows, n_experts};
  }

  const GgufFile& f_;
};

// The weight bytes a matmul reads (a strided view's rows, not the gaps between them).
uint64_t matrix_bytes(const kernels::Matrix& m) {
  return gguf::row_bytes(m.type, static_cast<uint64_t>(m.cols)) * static_cast<uint64_t>(m.rows);
}

// Packs the matrices the kernels read faster packed into one buffer (one allocation, so at most
// one partly used huge page), and drops the map pages each came from, so the rank's resident
// size stays about the size of its weights.
LargeBuffer pack_for_kernels(const std::vector<kernels::Matrix*>& matrices) {
  constexpr size_t kAlign = 64;
  size_t total = 0;
  for (const kernels::Matrix* m : matrices)
    if (kernels::should_pack(*m)) total += (kernels::packed_bytes(*m) + kAlign - 1) / kAlign * kAlign;
  if (total == 0) return nullptr;
  LargeBuffer bytes = allocate_large_buffer(total);  // no zero fill: packing writes every byte
  size_t at = 0;
  for (kernels::Matrix* m : matrices) {
    if (!kernels::should_pack(*m)) continue;
    const kernels::Matrix source = *m;
    *m = kernels::pack_rows8(source, bytes.get() + at);
    at += (kernels::packed_bytes(source) + kAlign - 1) / kAlign * kAlign;
    drop_resident_pages(source.data, source.row_stride * static_cast<uint64_t>(source.rows - 1) +
                                         gguf::row_bytes(source.type, static_cast<uint64_t>(source.cols)));
  }
  return bytes;
}

}  // namespace

ModelWeights ModelWeights::load(const GgufFile& f, const HParams& hp, const ArchSpec& arch, const Partition& part) {
  Loader L(f);
  ModelWeights w;
  const uint64_t E = hp.n_embd, D = hp.head_dim, F = hp.n_ff, V = hp.n_vocab, X = hp.n_expert;
  if (F == 0) throw Error(f.path() + ": metadata '" + f.arch_key("feed_forward_length") + "' is missing");
  if (V == 0) throw Error(f.path() + ": the vocabulary size is unknown (no tokenizer.ggml.tokens, no token_embd.weight)");
  // A shard file stores only its rank's slices: its rows/columns start at the slice's begin.
  const Partition stored = stored_partition(f, hp);
  const Range stored_kv = stored.kv_heads(hp);
  auto inside = [](const Range& r, const Range& outer) { return r.begin >= outer.begin && r.end <= outer.end; };
  if (!inside(part.q_heads, stored.q_heads) || !inside(part.ffn, stored.ffn) || !inside(part.vocab, stored.vocab) ||
      !inside(part.experts, stored.experts))
    throw Error(f.path() + " holds the slice " + stored.describe() + " but this rank computes " + part.describe() +
                "; use the shard cut for this rank and rank count");
  auto local = [](const Range& r, const Range& outer) { return Range{r.begin - outer.begin, r.end - outer.begin}; };
  const Range kv = local(part.kv_heads(hp), stored_kv);
  const Range q = local(part.q_heads, stored.q_heads);
  const Range ffn = local(part.ffn, stored.ffn);
  const uint64_t SH = stored.q_heads.size(), SKV = stored_kv.size(), SF = stored.ffn.size();
  const uint64_t SX = static_cast<uint64_t>(stored.experts.size());  // experts in the file

  w.token_embd = &L.tensor("token_embd.weight", {E, V});
  w.token_embd_data = f.tensor_data(*w.token_embd).data();
  w.output_norm = L.vector("output_norm.weight", E);
  const bool tied = f.find_tensor("output.weight") == nullptr;
  const Range vocab = tied ? part.vocab : local(part.vocab, stored.vocab);  // a tied head is token_embd, whole
  w.lm_head = L.rows(tied ? "token_embd.weight" : "output.weight", E, tied ? V : stored.vocab.size(), vocab.begin, vocab.end);
  if (f.find_tensor("rope_freqs.weight")) w.rope_freq_factors = L.vector("rope_freqs.weight", hp.rope_dim / 2);

  w.bytes_per_token = matrix_bytes(w.lm_head) + gguf::row_bytes(w.token_embd->type, E);
  for (uint32_t i = 0; i < hp.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights l;
    l.attn_norm = L.vector(p + "attn_norm.weight", E);
    l.ffn_norm = L.vector(p + "ffn_norm.weight", E);
    l.wq = L.rows(p + "attn_q.weight", E, SH * D, q.begin * D, q.end * D);
    l.wk = L.rows(p + "attn_k.weight", E, SKV * D, kv.begin * D, kv.end * D);
    l.wv = L.rows(p + "attn_v.weight", E, SKV * D, kv.begin * D, kv.end * D);
    l.wo = L.columns(p + "attn_output.weight", SH * D, E, q.begin * D, q.end * D, l.wo_bytes);
    if (X == 0) {
      l.w_gate = L.rows(p + "ffn_gate.weight", E, SF, ffn.begin, ffn.end);
      l.w_up = L.rows(p + "ffn_up.weight", E, SF, ffn.begin, ffn.end);
      l.w_down = L.columns(p + "ffn_down.weight", SF, E, ffn.begin, ffn.end, l.w_down_bytes);
    } else {
      l.router = L.floats(p + "ffn_gate_inp.weight", {E, X});
      // Indexed by expert; the experts this rank does not hold stay empty (data null).
      l.exp_gate.resize(X), l.exp_up.resize(X), l.exp_down.resize(X), l.exp_down_bytes.resize(X);
      for (int64_t e = part.experts.begin; e < part.experts.end; ++e) {
        const int64_t x = e - stored.experts.begin;  // its index in the file
        l.exp_gate[e] = L.rows(p + "ffn_gate_exps.weight", E, SF, ffn.begin, ffn.end, x, SX);
        l.exp_up[e] = L.rows(p + "ffn_up_exps.weight", E, SF, ffn.begin, ffn.end, x, SX);
        l.exp_down[e] = L.columns(p + "ffn_down_exps.weight", SF, E, ffn.begin, ffn.end, l.exp_down_bytes[e], x, SX);
      }
    }
    if (arch.qkv_bias) {
      l.q_bias = L.vector(p + "attn_q.bias", SH * D, q.begin * D, q.size() * D);
      l.k_bias = L.vector(p + "attn_k.bias", SKV * D, kv.begin * D, kv.size() * D);
      l.v_bias = L.vector(p + "attn_v.bias", SKV * D, kv.begin * D, kv.size() * D);
    }
    if (arch.qk_norm) {
      l.q_norm = L.vector(p + "attn_q_norm.weight", D);
      l.k_norm = L.vector(p + "attn_k_norm.weight", D);
    }
    for (const auto* m : {&l.wq, &l.wk, &l.wv, &l.wo}) w.bytes_per_token += matrix_bytes(*m);
    if (X == 0) {
      for (const auto* m : {&l.w_gate, &l.w_up, &l.w_down}) w.bytes_per_token += matrix_bytes(*m);
    } else {
      // A token reads the router and n_expert_used experts, of which this rank holds its share.
      const int64_t e = part.experts.begin;
      const uint64_t expert_bytes = matrix_bytes(l.exp_gate[e]) + matrix_bytes(l.exp_up[e]) + matrix_bytes(l.exp_down[e]);
      w.bytes_per_token += l.router.size() * sizeof(float) +
                           hp.n_expert_used * expert_bytes * static_cast<uint64_t>(part.experts.size()) / X;
    }
    w.layers.push_back(std::move(l));
  }
  // A tied head is also the embedding table: lookups go on reading their rows (a few per token)
  // from the map, while the head's matmuls read the packed copy.
  std::vector<kernels::Matrix*> matrices = {&w.lm_head};
  for (LayerWeights& l : w.layers) {
    for (auto* m : {&l.wq, &l.wk, &l.wv, &l.wo}) matrices.push_back(m);
    if (X == 0)
      for (auto* m : {&l.w_gate, &l.w_up, &l.w_down}) matrices.push_back(m);
    for (auto* experts : {&l.exp_gate, &l.exp_up, &l.exp_down})
      for (kernels::Matrix& m : *experts)
        if (m.data) matrices.push_back(&m);
  }
  w.packed = pack_for_kernels(matrices);
  return w;
}

}  // namespace clusterctl::model
