#include "worker/model/shard_file.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <unordered_map>

#include "worker/common/error.h"
#include "worker/gguf/gguf_split.h"
#include "worker/gguf/gguf_writer.h"
#include "worker/model/architecture.h"
#include "worker/model/tensor_table.h"

namespace clusterctl::model {
namespace fs = std::filesystem;
namespace {

constexpr const char* kRank = "clusterctl.shard.rank";
constexpr const char* kWorld = "clusterctl.shard.world_size";
constexpr const char* kSplit = "clusterctl.shard.split";
constexpr const char* kFingerprint = "clusterctl.shard.source_fingerprint";
constexpr const char* kSource = "clusterctl.shard.source";
constexpr const char* kHeads = "clusterctl.shard.head_bounds";
constexpr const char* kFfn = "clusterctl.shard.ffn_bounds";
constexpr const char* kVocab = "clusterctl.shard.vocab_bounds";
// "replicated-attention" when every rank holds every head (head bounds then 0 and n_head for each rank).
constexpr const char* kLayout = "clusterctl.shard.layout";
constexpr const char* kExperts = "clusterctl.shard.expert_bounds";  // mixtures of experts only
// deepseek2's leading dense layers' and shared experts' FFN columns (only where the model has them).
constexpr const char* kDenseFfn = "clusterctl.shard.dense_ffn_bounds";
constexpr const char* kSharedFfn = "clusterctl.shard.shared_ffn_bounds";

uint64_t fnv1a(uint64_t h, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

std::vector<int32_t> bounds(const ShardPlan& plan, const std::function<Range(const Partition&)>& get) {
  std::vector<int32_t> b{0};
  for (const auto& p : plan.parts) b.push_back(static_cast<int32_t>(get(p).end));
  return b;
}

// Rows [r0, r1) of a tensor with `row_bytes`-byte rows.
gguf::TensorSource row_slice(const uint8_t* data, size_t row_bytes, int64_t r0) {
  return [=](uint64_t first, uint64_t n, uint8_t* out) {
    std::memcpy(out, data + (r0 + first) * row_bytes, n * row_bytes);
  };
}

// Rows [r0, r1) of each expert's matrix in an [n x rows x experts] tensor, from expert e0 on.
gguf::TensorSource expert_row_slice(const uint8_t* data, size_t row_bytes, uint64_t rows, int64_t r0, int64_t r1,
                                    int64_t e0) {
  const uint64_t kept = static_cast<uint64_t>(r1 - r0);
  const uint8_t* base = data + static_cast<uint64_t>(e0) * rows * row_bytes;
  return [=](uint64_t first, uint64_t n, uint8_t* out) {
    for (uint64_t i = first; i < first + n; ++i, out += row_bytes)
      std::memcpy(out, base + ((i / kept) * rows + static_cast<uint64_t>(r0) + i % kept) * row_bytes, row_bytes);
  };
}

// Columns [c0, c1) of every row (c0, c1 on quant-block boundaries).
gguf::TensorSource column_slice(const uint8_t* data, gguf::GgmlType type, uint64_t cols, int64_t c0, int64_t c1) {
  const size_t stride = gguf::row_bytes(type, cols), skip = gguf::row_bytes(type, c0),
               len = gguf::row_bytes(type, c1 - c0);
  return [=](uint64_t first, uint64_t n, uint8_t* out) {
    for (uint64_t r = 0; r < n; ++r) std::memcpy(out + r * len, data + (first + r) * stride + skip, len);
  };
}

}  // namespace

std::string model_fingerprint(const gguf::GgufFile& f) {
  uint64_t h = 0xcbf29ce484222325ULL;
  const auto& all = f.tensors();
  if (!all.empty()) h = fnv1a(h, f.header().data(), f.header().size());
  for (const auto& t : all) {
    const auto d = f.tensor_data(t);
    h = fnv1a(h, d.data(), std::min<size_t>(d.size(), 4096));
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

std::optional<ShardInfo> read_shard_info(const gguf::GgufFile& f) {
  if (!f.find(kRank)) return std::nullopt;
  ShardInfo s;
  s.rank = static_cast<int>(*f.get_int(kRank));
  s.world_size = static_cast<int>(f.get_int(kWorld).value_or(0));
  s.split = f.get_string(kSplit, "");
  s.fingerprint = f.get_string(kFingerprint, "");
  s.source = f.get_string(kSource, "");
  const auto h = f.get_number_array(kHeads), ff = f.get_number_array(kFfn), v = f.get_number_array(kVocab);
  const size_t n = static_cast<size_t>(s.world_size);
  if (s.world_size < 1 || s.rank < 0 || s.rank >= s.world_size || h.size() != n + 1 || ff.size() != n + 1 ||
      v.size() != n + 1 || s.fingerprint.empty())
    throw Error(f.path() +
                ": the clusterctl.shard.* metadata is incomplete or inconsistent; cut the shards again "
                "with 'clusterctl shard'");
  // Absent: every rank holds every expert (none in a dense model), cut to its FFN columns.
  const auto x = f.get_number_array(kExperts);
  const int64_t n_expert = f.get_int(f.arch_key("expert_count")).value_or(0);
  if (!x.empty() && x.size() != n + 1)
    throw Error(f.path() +
                ": the clusterctl.shard.* metadata is incomplete or inconsistent; cut the shards again "
                "with 'clusterctl shard'");
  // With expert bounds every rank holds all FFN columns of its experts.
  auto ffn_of = [&](size_t i) {
    return x.empty() ? Range{int64_t(ff[i]), int64_t(ff[i + 1])} : Range{0, int64_t(ff[n])};
  };
  const auto dense = f.get_number_array(kDenseFfn), shared = f.get_number_array(kSharedFfn);
  if ((!dense.empty() && dense.size() != n + 1) || (!shared.empty() && shared.size() != n + 1))
    throw Error(f.path() +
                ": the clusterctl.shard.* metadata is incomplete or inconsistent; cut the shards again "
                "with 'clusterctl shard'");
  auto range_of = [](const std::vector<double>& b, size_t i) {
    return b.empty() ? Range{0, 0} : Range{int64_t(b[i]), int64_t(b[i + 1])};
  };
  const std::string layout = f.get_string(kLayout, layout_name(Layout::split_attention));
  if (!parse_layout(layout))
    throw Error(f.path() + ": the shard's layout '" + layout +
                "' is not known to this clusterctl; cut the shards again with 'clusterctl shard'");
  const bool replicated = *parse_layout(layout) == Layout::replicated_attention;
  for (size_t i = 0; i < n; ++i)
    s.plan.parts.push_back({replicated ? Range{0, int64_t(h[n])} : Range{int64_t(h[i]), int64_t(h[i + 1])},
                            ffn_of(i),
                            {int64_t(v[i]), int64_t(v[i + 1])},
                            x.empty() ? Range{0, n_expert} : Range{int64_t(x[i]), int64_t(x[i + 1])},
                            range_of(dense, i),
                            range_of(shared, i),
                            replicated});
  return s;
}

Partition stored_partition(const gguf::GgufFile& f, const HParams& hp) {
  auto info = read_shard_info(f);
  return info ? info->plan.parts[info->rank] : Partition::whole(hp);
}

std::string shard_file_name(const std::string& source_path, int rank, int world_size) {
  // A split model's shards are named after the model, not its first part.
  const auto split = gguf::parse_split_path(source_path);
  const std::string stem = split ? fs::path(split->prefix).filename().string() : fs::path(source_path).stem().string();
  return stem + ".rank" + std::to_string(rank) + "of" + std::to_string(world_size) + ".gguf";
}

std::vector<ShardTensor> shard_tensors(const gguf::GgufFile& src, const HParams& hp, const Partition& p) {
  std::unordered_map<std::string, TensorSpec> specs;
  for (TensorSpec& s : find_architecture(hp.arch, src.path()).tensors(hp)) specs.emplace(s.name(), std::move(s));
  std::vector<ShardTensor> out;
  for (const auto& t : src.tensors()) {
    const uint8_t* data = src.tensor_data(t).data();
    const size_t rb = gguf::row_bytes(t.type, t.shape[0]);
    auto add = [&](std::vector<uint64_t> shape, gguf::TensorSource source) {
      uint64_t rows = 1;
      for (size_t i = 1; i < shape.size(); ++i) rows *= shape[i];
      const uint64_t bytes = gguf::row_bytes(t.type, shape[0]) * rows;
      out.push_back({t.name, t.type, std::move(shape), bytes, std::move(source)});
    };
    const auto spec = specs.find(t.name);
    // Tensors the architecture does not name go whole to every rank, as replicated ones do.
    if (spec == specs.end() || spec->second.split == Split::Replicated) {
      add(t.shape, row_slice(data, rb, 0));
      continue;
    }
    const TensorSlice slice = slice_of(spec->second, p, hp);
    const int cut = slice.cut_dim(t.shape);
    if (cut == 0) {
      const Range c = slice.dims[0];
      const int64_t block = gguf::type_traits(t.type).block_size;
      if (c.begin % block || c.end % block)
        throw Error(src.path() + ": cannot cut columns [" + std::to_string(c.begin) + "," + std::to_string(c.end) +
                    ") of " + t.name + " (" + std::string(gguf::type_name(t.type)) + " blocks of " +
                    std::to_string(block) + ")");
    }
    if (t.shape.size() == 1) {  // a slice of a 1-D tensor (biases)
      const Range e = slice.dims[0];
      add(slice.shape(), row_slice(data + gguf::row_bytes(t.type, e.begin), gguf::row_bytes(t.type, e.size()), 0));
    } else if (t.shape.size() == 2) {
      add(slice.shape(), cut == 0 ? column_slice(data, t.type, t.shape[0], slice.dims[0].begin, slice.dims[0].end)
                                  : row_slice(data, rb, slice.dims[1].begin));
    } else {
      // The rank's experts (an expert is shape[1] rows), and of them its rows or columns.
      const int64_t e0 = slice.dims[2].begin;
      add(slice.shape(), cut == 0 ? column_slice(data + static_cast<uint64_t>(e0) * t.shape[1] * rb, t.type, t.shape[0],
                                                 slice.dims[0].begin, slice.dims[0].end)
                                  : expert_row_slice(data, rb, t.shape[1], slice.dims[1].begin, slice.dims[1].end, e0));
    }
  }
  return out;
}

std::vector<std::string> write_shards(const gguf::GgufFile& src, const HParams& hp, const ShardPlan& plan,
                                      const std::string& split, const std::string& dir, const std::atomic<int>* stop) {
  if (read_shard_info(src)) throw Error(src.path() + " is already a shard; cut shards from the whole model file");
  plan.validate(hp);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create the output directory " + dir + ": " + ec.message());
  const std::string fingerprint = model_fingerprint(src);
  const int n = static_cast<int>(plan.parts.size());
  // Expert bounds only when ranks hold different experts; otherwise every rank holds them all.
  const bool split_experts = std::any_of(plan.parts.begin(), plan.parts.end(), [&](const Partition& p) {
    return p.experts != Range{0, hp.n_expert};
  });
  std::vector<std::string> paths;
  for (int r = 0; r < n; ++r) {
    const Partition& p = plan.parts[r];
    gguf::GgufWriter w(src.alignment());
    // A shard is one file whatever the source was: no split.* keys.
    w.copy_kv(src, [](std::string_view k) { return !k.starts_with("clusterctl.shard.") && !k.starts_with("split."); });
    w.set_kv(kRank, gguf::value_u32(r));
    w.set_kv(kWorld, gguf::value_u32(n));
    w.set_kv(kSplit, gguf::value_string(split));
    w.set_kv(kFingerprint, gguf::value_string(fingerprint));
    w.set_kv(kSource, gguf::value_string(fs::path(src.path()).filename().string()));
    if (plan.layout() == Layout::replicated_attention) {
      w.set_kv(kLayout, gguf::value_string(layout_name(Layout::replicated_attention)));
      std::vector<int32_t> heads(n + 1, static_cast<int32_t>(hp.n_head));
      heads[0] = 0;  // every rank all heads: the bounds say only how many there are
      w.set_kv(kHeads, gguf::value_i32_array(heads));
    } else {
      w.set_kv(kHeads, gguf::value_i32_array(bounds(plan, [](const Partition& x) { return x.q_heads; })));
    }
    w.set_kv(kFfn, gguf::value_i32_array(bounds(plan, [](const Partition& x) { return x.ffn; })));
    w.set_kv(kVocab, gguf::value_i32_array(bounds(plan, [](const Partition& x) { return x.vocab; })));
    if (split_experts)
      w.set_kv(kExperts, gguf::value_i32_array(bounds(plan, [](const Partition& x) { return x.experts; })));
    if (hp.n_ff_dense > 0)
      w.set_kv(kDenseFfn, gguf::value_i32_array(bounds(plan, [](const Partition& x) { return x.dense_ffn; })));
    if (hp.n_expert_shared > 0)
      w.set_kv(kSharedFfn, gguf::value_i32_array(bounds(plan, [](const Partition& x) { return x.shared_ffn; })));
    for (ShardTensor& t : shard_tensors(src, hp, p)) {
      gguf::TensorSource source = std::move(t.source);
      if (stop)
        source = [stop, read = std::move(source)](uint64_t first_row, uint64_t n_rows, uint8_t* out) {
          if (*stop) throw ShardingStopped("the cut was stopped");
          read(first_row, n_rows, out);
        };
      w.add_tensor(std::move(t.name), t.type, std::move(t.shape), std::move(source));
    }
    const std::string path = (fs::path(dir) / shard_file_name(src.path(), r, n)).string();
    w.write(path);
    paths.push_back(path);
  }
  return paths;
}

std::string find_shard_in_dir(const std::string& dir, int rank, int world_size) {
  const std::string suffix = ".rank" + std::to_string(rank) + "of" + std::to_string(world_size) + ".gguf";
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      found.push_back(e.path().string());
  }
  if (ec) throw Error("cannot read the shard directory " + dir + ": " + ec.message());
  if (found.empty())
    throw Error("the shard for rank " + std::to_string(rank) + " of " + std::to_string(world_size) + " (*" + suffix +
                ") is missing in " + dir + "; cut it with 'clusterctl shard MODEL.gguf --ranks " +
                std::to_string(world_size) + " --out " + dir + "'");
  if (found.size() > 1)
    throw Error(dir + " holds " + std::to_string(found.size()) + " shards for rank " + std::to_string(rank) + " of " +
                std::to_string(world_size) + " (" + found[0] + ", " + found[1] +
                "); keep one model's shards per directory");
  return found.front();
}

}  // namespace clusterctl::model
