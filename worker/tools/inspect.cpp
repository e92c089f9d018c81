// `clusterctl inspect MODEL.gguf`: what a model file holds, without loading its weights.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "worker/common/human_bytes.h"
#include "worker/gguf/gguf_file.h"
#include "worker/model/hparams.h"
#include "worker/tools/engine_verbs.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {
namespace {

std::string shape_string(const std::vector<uint64_t>& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? " x " : "") + std::to_string(shape[i]);
  return s;
}

// Weights read to generate one token: every matrix once, but only one row of the
// token embedding (unless it doubles as the output matrix), and of each layer's experts only
// the ones a token is routed to.
uint64_t bytes_per_token(const gguf::GgufFile& f, const model::HParams& h) {
  uint64_t total = 0;
  bool tied = f.find_tensor("output.weight") == nullptr;
  for (const auto& t : f.tensors()) {
    if (t.name == "token_embd.weight" && !tied)
      total += t.row_bytes();
    else if (h.n_expert && t.shape.size() == 3)
      total += t.n_bytes / h.n_expert * h.n_expert_used;
    else
      total += t.n_bytes;
  }
  return total;
}

// Bits per weight of each tensor type in the file (bytes * 8 / elements over its tensors, so the
// block scales count) and of the whole file, in the order the types first appear.
struct TypeBits {
  std::string type;
  size_t tensors = 0;
  uint64_t bytes = 0, elements = 0;
  double bpw() const { return elements ? 8.0 * static_cast<double>(bytes) / static_cast<double>(elements) : 0.0; }
};

std::vector<TypeBits> bits_per_type(const gguf::GgufFile& f, TypeBits& file) {
  std::vector<TypeBits> out;
  for (const auto& t : f.tensors()) {
    const std::string name(gguf::type_name(t.type));
    auto it = std::find_if(out.begin(), out.end(), [&](const TypeBits& b) { return b.type == name; });
    if (it == out.end()) it = out.insert(out.end(), TypeBits{name});
    for (TypeBits* b : {&*it, &file}) ++b->tensors, b->bytes += t.n_bytes, b->elements += t.n_elements;
  }
  return out;
}

}  // namespace

int inspect_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("model", po::value<std::string>()->required(), "GGUF model file")(
      "json", po::bool_switch(), "print JSON")("metadata", po::bool_switch(), "print every metadata key");
  po::positional_options_description pos;
  pos.add("model", 1);
  auto vm = parse_options(argc, argv, "clusterctl inspect MODEL.gguf [--json] [--metadata]", opts, pos);
  if (!vm) return 0;

  gguf::GgufFile f((*vm)["model"].as<std::string>());
  auto h = model::HParams::from_gguf(f);
  uint64_t total = 0;
  for (const auto& t : f.tensors()) total += t.n_bytes;
  uint64_t per_token = bytes_per_token(f, h);
  TypeBits file_bits{"file"};
  const std::vector<TypeBits> type_bits = bits_per_type(f, file_bits);

  if ((*vm)["json"].as<bool>()) {
    nlohmann::json j;
    j["file"] = f.path();
    j["parts"] = f.part_count();
    j["gguf_version"] = f.version();
    j["architecture"] = h.arch;
    j["name"] = h.name;
    j["n_embd"] = h.n_embd;
    j["n_layer"] = h.n_layer;
    j["n_head"] = h.n_head;
    j["n_head_kv"] = h.n_head_kv;
    j["head_dim"] = h.head_dim;
    j["n_ff"] = h.n_ff;
    j["n_expert"] = h.n_expert;
    j["n_expert_used"] = h.n_expert_used;
    j["n_vocab"] = h.n_vocab;
    j["context_length"] = h.n_ctx_train;
    j["rope_freq_base"] = h.rope_freq_base;
    j["rms_eps"] = h.rms_eps;
    j["tokenizer"] = {{"model", h.tokenizer_model}, {"pre", h.tokenizer_pre}};
    j["tensor_bytes"] = total;
    j["bytes_per_token"] = per_token;
    j["bits_per_weight"] = file_bits.bpw();
    auto& tb = j["types"] = nlohmann::json::array();
    for (const auto& b : type_bits)
      tb.push_back({{"type", b.type},
                    {"tensors", b.tensors},
                    {"bytes", b.bytes},
                    {"elements", b.elements},
                    {"bits_per_weight", b.bpw()}});
    auto& tl = j["tensors"] = nlohmann::json::array();
    for (const auto& t : f.tensors())
      tl.push_back({{"name", t.name}, {"type", gguf::type_name(t.type)}, {"shape", t.shape}, {"bytes", t.n_bytes}});
    if ((*vm)["metadata"].as<bool>()) {
      auto& md = j["metadata"] = nlohmann::json::object();
      for (const auto& [k, v] : f.metadata()) md[k] = v.to_display();
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  const std::string parts = f.part_count() > 1 ? " in " + std::to_string(f.part_count()) + " parts" : "";
  std::printf("file           %s (GGUF v%u, %s%s)\n", f.path().c_str(), f.version(), human_bytes(f.file_size()).c_str(),
              parts.c_str());
  std::printf("architecture   %s%s%s\n", h.arch.c_str(), h.name.empty() ? "" : "  name: ", h.name.c_str());
  std::printf("shape          %u wide, %u layers, %u heads, %u KV heads, head dim %u, FFN %u\n", h.n_embd, h.n_layer,
              h.n_head, h.n_head_kv, h.head_dim, h.n_ff);
  if (h.n_expert)
    std::printf("experts        %u per layer (FFN %u each), %u per token\n", h.n_expert, h.n_ff, h.n_expert_used);
  std::printf("vocab          %u tokens, tokenizer %s%s%s\n", h.n_vocab,
              h.tokenizer_model.empty() ? "(none)" : h.tokenizer_model.c_str(), h.tokenizer_pre.empty() ? "" : " / ",
              h.tokenizer_pre.c_str());
  std::printf("context        %u tokens (trained)\n", h.n_ctx_train);
  std::printf("rope           base %g, %u dims; rms eps %g\n", h.rope_freq_base, h.rope_dim, h.rms_eps);
  std::printf("weights        %s in %zu tensors; %s read per generated token\n", human_bytes(total).c_str(),
              f.tensors().size(), human_bytes(per_token).c_str());
  std::printf("bits/weight    %.3f for the file:", file_bits.bpw());
  for (const auto& b : type_bits)
    std::printf(" %s %.3f (%zu tensors, %s)%s", b.type.c_str(), b.bpw(), b.tensors, human_bytes(b.bytes).c_str(),
                &b == &type_bits.back() ? "" : ",");
  std::printf("\n");
  if ((*vm)["metadata"].as<bool>()) {
    std::printf("\nmetadata\n");
    for (const auto& [k, v] : f.metadata()) std::printf("  %-44s %s\n", k.c_str(), v.to_display().c_str());
  }
  std::printf("\n%-36s %-8s %-22s %s\n", "tensor", "type", "shape", "bytes");
  for (const auto& t : f.tensors())
    std::printf("%-36s %-8s %-22s %s\n", t.name.c_str(), std::string(gguf::type_name(t.type)).c_str(),
                shape_string(t.shape).c_str(), human_bytes(t.n_bytes).c_str());
  return 0;
}

}  // namespace clusterctl::cli
