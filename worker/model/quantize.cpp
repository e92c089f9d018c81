#include "worker/model/quantize.h"

#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"
#include "worker/gguf/gguf_writer.h"
#include "worker/kernels/kernels.h"
#include "worker/kernels/thread_pool.h"
#include "worker/model/architecture.h"
#include "worker/model/hparams.h"
#include "worker/model/quant_plan.h"
#include "worker/model/shard_file.h"

namespace clusterctl::model {
namespace {

using gguf::GgmlType;

// llama.cpp's tensor order (its loader's weight_name_comparer): the model's own tensors first,
// then the layers in number order, each by name.
int layer_of(const std::string& name) {
  int layer = -1;
  if (name.rfind("blk.", 0) == 0) std::sscanf(name.c_str(), "blk.%d.", &layer);
  return layer;
}
bool llama_cpp_order(const gguf::TensorInfo* a, const gguf::TensorInfo* b) {
  const int la = layer_of(a->name), lb = layer_of(b->name);
  return la != lb ? la < lb : a->name < b->name;
}

// What llama-quantize quantises: the matrices named *weight, not the norms or the router.
bool quantizable(const gguf::TensorInfo& t) {
  return t.shape.size() >= 2 && t.name.ends_with("weight") && t.name.find("_norm.weight") == std::string::npos &&
         t.name.find("ffn_gate_inp.weight") == std::string::npos;
}

}  // namespace

uint64_t quantize_model(const QuantizeOptions& o) {
  auto log = [&](const std::string& line) {
    if (o.log) o.log(line);
  };
  if (o.out_path.empty()) throw Error("no output file given");
  const QuantPreset& preset = find_quant_preset(o.type);
  // llama-quantize reads "Q4_K" and "Q5_K" as its _M mixes; ours are the plain types (synth's).
  if (preset.name == "Q4_K" || preset.name == "Q5_K")
    throw Error("--type " + preset.name + " means " + preset.name + "_M to llama-quantize; say --type " + preset.name +
                "_M (the mix), or --type " + preset.name + "_M --pure (every matrix " + preset.name + ")");
  gguf::GgufFile src(o.in_path);
  if (read_shard_info(src))
    throw Error(src.path() + " is one rank's shard; quantize the whole model, then cut shards from the result");
  const HParams hp = HParams::from_gguf(src);
  std::unordered_map<std::string, TensorSpec> specs;
  for (TensorSpec& s : find_architecture(hp.arch, src.path()).tensors(hp)) specs.emplace(s.name(), std::move(s));
  const bool tied = src.find_tensor(tensor_name(TensorKind::Output)) == nullptr;

  std::vector<const gguf::TensorInfo*> order;
  for (const auto& t : src.tensors()) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), llama_cpp_order);

  // The metadata in the source's order, then quantization_version and file_type at the end, as
  // llama-quantize's gguf_set_val (remove, append) leaves them; a split source's keys dropped.
  gguf::GgufWriter w(src.alignment());
  w.copy_kv(src, [](std::string_view k) {
    return !k.starts_with("split.") && k != "general.quantization_version" && k != "general.file_type";
  });
  w.add_kv("general.quantization_version", gguf::value_u32(2));
  w.add_kv("general.file_type", gguf::value_u32(preset.file_type));

  kernels::ThreadPool pool(o.threads > 0 ? o.threads : kernels::default_thread_count());
  for (const gguf::TensorInfo* t : order) {
    GgmlType type = t->type;
    if (quantizable(*t)) {
      if (!is_float_type(t->type))
        throw Error(src.path() + ": tensor '" + t->name + "' is already " + std::string(gguf::type_name(t->type)) +
                    "; quantize from the F32, F16 or BF16 model (requantizing loses precision)");
      const auto spec = specs.find(t->name);
      const QuantRole role = spec != specs.end() ? quant_role(spec->second, tied) : QuantRole::Matrix;
      const int layer = std::max(layer_of(t->name), 0);
      try {
        type = choose_quant_type(preset, role, static_cast<uint32_t>(layer), hp, t->shape[0], o.pure);
      } catch (const Error& e) {
        throw Error(src.path() + ": tensor '" + t->name + "': " + e.what());
      }
      if (kernels::is_iq_grid_type(type))
        throw Error("--type " + preset.name + ": tensor '" + t->name + "' would be " +
                    std::string(gguf::type_name(type)) +
                    ", which clusterctl cannot quantize to (ggml's IQ1-IQ3 quantisers work from an importance matrix); "
                    "use llama-quantize --imatrix for " +
                    preset.name + ", or a preset without IQ1-IQ3 tensors (Q2_K, Q3_K_M, IQ4_XS, ...)");
    }
    if (type == t->type) {
      w.copy_tensor(src, *t);
      continue;
    }
    const uint64_t ncols = t->shape[0];
    const uint8_t* from = src.tensor_data(*t).data();
    const size_t in_row = gguf::row_bytes(t->type, ncols), out_row = gguf::row_bytes(type, ncols);
    const GgmlType in_type = t->type;
    w.add_tensor(t->name, type, t->shape, [=, &pool](uint64_t first, uint64_t n, uint8_t* out) {
      pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e) {
        std::vector<float> row(ncols);
        for (int64_t r = b; r < e; ++r) {
          kernels::dequantize_row(in_type, from + (first + r) * in_row, row.data(), static_cast<int64_t>(ncols));
          kernels::quantize_row(type, row.data(), out + r * out_row, static_cast<int64_t>(ncols));
        }
      });
    });
  }
  char line[512];
  std::snprintf(line, sizeof line, "quantize: %s -> %s (%s), %zu tensors", src.path().c_str(), o.out_path.c_str(),
                preset.name.c_str(), order.size());
  log(line);
  const uint64_t size = w.write(o.out_path);
  std::snprintf(line, sizeof line, "wrote %s: %.1f MiB", o.out_path.c_str(), static_cast<double>(size) / 1048576.0);
  log(line);
  return size;
}

}  // namespace clusterctl::model
