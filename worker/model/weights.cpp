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
    if (!t)
      throw Error(f_.path() + ": tensor '" + name + "' is missing: the file is incomplete or not this architecture");
    if (t->shape != shape)
      throw Error(f_.path() + ": tensor '" + name + "' has shape " + shape_str(t->shape) + ", expected " +
                  shape_str(shape) + " from the model's metadata");
    if (!kernels::is_computable(t->type))
      throw Error(f_.path() + ": tensor '" + name + "' has type " + std::string(gguf::type_name(t->type)) +
                  ", which the engine does not compute (supported: " + kernels::computable_type_names() +
                  "); requantize the model to one of these");
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
    kernels::validate_blocks(m, f_.path() + ": tensor '" + name + "'");
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
    kernels::validate_blocks(m, f_.path() + ": tensor '" + name + "'");
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

// Loads the part `want` of tensor `s` from the file, which stores the part `stored` of it.
void load_weight(const Loader& L, const TensorSpec& s, const std::string& name, const TensorSlice& stored,
                 const TensorSlice& want, Weight& out) {
  out.present = true;
  const std::vector<uint64_t> shape = stored.shape();
  std::vector<Range> local;
  for (size_t d = 0; d < shape.size(); ++d)
    local.push_back({want.dims[d].begin - stored.dims[d].begin, want.dims[d].end - stored.dims[d].begin});
  if (shape.size() == 1) {
    out.values = L.vector(name, shape[0], local[0].begin, local[0].size());
    return;
  }
  if (s.as_floats) {
    out.values = L.floats(name, shape);
    return;
  }
  auto one = [&](int64_t expert, uint64_t n_experts, LargeBuffer& owned) {
    if (local[0] == Range{0, static_cast<int64_t>(shape[0])})
      return L.rows(name, shape[0], shape[1], local[1].begin, local[1].end, expert, n_experts);
    return L.columns(name, shape[0], shape[1], local[0].begin, local[0].end, owned, expert, n_experts);
  };
  if (shape.size() == 2) {
    out.matrix = one(-1, 0, out.owned);
    return;
  }
  // Indexed by expert (or head) of the whole model; those of other ranks stay empty.
  out.experts.resize(s.shape[2]);
  out.experts_owned.resize(s.shape[2]);
  for (int64_t e = want.dims[2].begin; e < want.dims[2].end; ++e)
    out.experts[e] = one(e - stored.dims[2].begin, shape[2], out.experts_owned[e]);
}

}  // namespace

ModelWeights ModelWeights::load(const GgufFile& f, const HParams& hp, const Architecture& arch, const Partition& part) {
  Loader L(f);
  const uint64_t E = hp.n_embd, V = hp.n_vocab, X = hp.n_expert;
  if (hp.n_ff == 0) throw Error(f.path() + ": metadata '" + f.arch_key("feed_forward_length") + "' is missing");
  if (V == 0)
    throw Error(f.path() + ": the vocabulary size is unknown (no tokenizer.ggml.tokens, no token_embd.weight)");
  // A shard file stores only its rank's slices: its rows/columns start at the slice's begin.
  const Partition stored = stored_partition(f, hp);
  auto inside = [](const Range& r, const Range& outer) { return r.begin >= outer.begin && r.end <= outer.end; };
  if (!inside(part.q_heads, stored.q_heads) || !inside(part.ffn, stored.ffn) || !inside(part.vocab, stored.vocab) ||
      !inside(part.experts, stored.experts) || !inside(part.dense_ffn, stored.dense_ffn) ||
      !inside(part.shared_ffn, stored.shared_ffn))
    throw Error(f.path() + " holds the slice " + stored.describe() + " but this rank computes " + part.describe() +
                "; use the shard cut for this rank and rank count");

  ModelWeights w;
  w.layers.resize(hp.n_layer);
  LayerWeights whole_model;
  const std::vector<TensorSpec> specs = arch.tensors(hp);
  for (const TensorSpec& s : specs) {
    const std::string name = s.name();
    if (s.optional && !f.find_tensor(name)) continue;
    load_weight(L, s, name, slice_of(s, stored, hp), slice_of(s, part, hp),
                s.layer < 0 ? whole_model[s.kind] : w.layers[s.layer][s.kind]);
  }
  if (arch.derive_weights) arch.derive_weights(hp, part, w);
  w.token_embd = whole_model.matrix(TensorKind::TokenEmbd);
  w.output_norm = std::move(whole_model[TensorKind::OutputNorm].values);
  w.rope_freq_factors = std::move(whole_model[TensorKind::RopeFreqs].values);
  // Tied: the head is token_embd, whole in every file, cut here to this rank's vocabulary.
  w.lm_head = whole_model.has(TensorKind::Output)
                  ? whole_model.matrix(TensorKind::Output)
                  : L.rows(tensor_name(TensorKind::TokenEmbd), E, V, part.vocab.begin, part.vocab.end);

  // A token reads every matrix of a layer (the dequantised router too), and n_expert_used of its
  // experts, of which this rank holds its share.
  w.bytes_per_token = matrix_bytes(w.lm_head) + gguf::row_bytes(w.token_embd.type, E);
  std::vector<uint64_t> expert_bytes(hp.n_layer, 0);  // of one of this rank's experts
  for (const TensorSpec& s : specs) {
    if (s.layer < 0 || s.shape.size() < 2 || !w.layers[s.layer].has(s.kind)) continue;
    const Weight& t = w.layers[s.layer][s.kind];
    if (s.split == Split::HeadSlices) {  // every head's, read by every token
      for (int64_t h = part.q_heads.begin; h < part.q_heads.end; ++h) w.bytes_per_token += matrix_bytes(t.experts[h]);
    } else if (s.shape.size() == 3)
      expert_bytes[s.layer] += matrix_bytes(t.experts[part.experts.begin]);
    else
      w.bytes_per_token += s.as_floats ? t.values.size() * sizeof(float) : matrix_bytes(t.matrix);
  }
  for (uint64_t bytes : expert_bytes)
    if (X > 0) w.bytes_per_token += hp.n_expert_used * bytes * static_cast<uint64_t>(part.experts.size()) / X;
  // A tied head is also the embedding table: lookups go on reading their rows (a few per token)
  // from the map, while the head's matmuls read the packed copy.
  std::vector<kernels::Matrix*> matrices = {&w.lm_head};
  for (LayerWeights& l : w.layers)
    for (Weight& t : l.tensors) {
      if (t.matrix.data) matrices.push_back(&t.matrix);
      for (kernels::Matrix& m : t.experts)
        if (m.data) matrices.push_back(&m);
    }
  w.packed = pack_for_kernels(matrices);
  return w;
}

}  // namespace clusterctl::model
