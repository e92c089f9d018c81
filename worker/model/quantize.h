#pragma once
// `clusterctl model quantize IN OUT --type T`: a quantised copy of an F32/F16/BF16 model, made as
// llama-quantize makes it (the same per-tensor types, quantisers, tensor order and metadata), so
// the file is byte for byte llama-quantize's.
#include <cstdint>
#include <functional>
#include <string>

namespace clusterctl::model {

struct QuantizeOptions {
  std::string in_path;  // a model of a supported architecture, or its first part / folder
  std::string out_path;
  std::string type;                             // a preset of quant_presets()
  bool pure = false;                            // every matrix in the base type (llama-quantize --pure)
  int threads = 0;                              // 0: the physical cores
  std::function<void(const std::string&)> log;  // progress lines; may be empty
};

// Writes OUT (OUT.tmp, then renamed). Throws clusterctl::Error naming a quantised or sharded
// input, an unknown type, or a tensor llama-quantize could not quantise either. Returns the size.
uint64_t quantize_model(const QuantizeOptions& o);

}  // namespace clusterctl::model
