// `clusterctl pull REPO[:QUANT] | REPO/FILE.gguf`: a model from Hugging Face into the hub cache
// (controller/hub/pull.h). Progress and the summary go to stderr, the model's path to stdout.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "controller/hub/hub_cache.h"
#include "controller/hub/pull.h"
#include "worker/common/error.h"
#include "worker/common/human_bytes.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {

int pull_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("model", po::value<std::string>()->required(),
                     "ORG/NAME, ORG/NAME:QUANT (e.g. unsloth/Qwen3-8B-GGUF:Q4_K_M) or ORG/NAME/FILE.gguf")(
      "json", po::bool_switch(), "print the pulled files, commit and byte counts as JSON");
  po::positional_options_description pos;
  pos.add("model", 1);
  auto vm = parse_options(argc, argv,
                          "clusterctl pull REPO[:QUANT] | REPO/FILE.gguf [--json]\n\n"
                          "Downloads a GGUF model from Hugging Face, as `llama-server -hf` names it: the quant by\n"
                          "name (any case) among the repo's files, or the file named; every part of a split model.\n"
                          "Resumes a download that stopped, checks each file's SHA-256 against the hub's, and keeps\n"
                          "the files in the hub cache that huggingface_hub and llama.cpp share ($HF_HUB_CACHE, else\n"
                          "$HF_HOME/hub, default ~/.cache/huggingface/hub). Prints the model's path.\n"
                          "HF_TOKEN: the token for gated or private models. HF_ENDPOINT: a mirror of the hub.\n"
                          "HF_HUB_OFFLINE=1: only what is in the cache. run, serve, chat, bench and a cluster\n"
                          "file's `model:` take the same names and pull first.",
                          opts, pos);
  if (!vm) return 0;
  const std::string name = (*vm)["model"].as<std::string>();
  const auto ref = hub::parse_model_ref(name);
  if (!ref)
    throw Error("'" + name +
                "' is not a Hugging Face model name: give ORG/NAME, ORG/NAME:QUANT (e.g. "
                "unsloth/Qwen3-8B-GGUF:Q4_K_M) or ORG/NAME/FILE.gguf");
  const hub::PulledModel m = hub::pull_model(*ref, stderr);
  if ((*vm)["json"].as<bool>()) {
    nlohmann::json j = {{"model", ref->str()},
                        {"repo", ref->repo},
                        {"path", m.path},
                        {"files", m.files},
                        {"commit", m.commit},
                        {"bytes", m.bytes},
                        {"received", m.received},
                        {"already", m.already},
                        {"from_cache", m.from_cache},
                        {"cache", hub::hub_cache_dir()}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  const std::string parts = m.files.size() > 1 ? ", " + std::to_string(m.files.size()) + " parts" : "";
  if (m.from_cache)
    std::fprintf(stderr, "%s: %s%s from the cache (the hub was not asked)\n", ref->str().c_str(),
                 human_bytes(m.bytes).c_str(), parts.c_str());
  else
    std::fprintf(stderr, "pulled %s (%s%s): %s downloaded, %s already here, SHA-256 verified\n", ref->str().c_str(),
                 human_bytes(m.bytes).c_str(), parts.c_str(), human_bytes(m.received).c_str(),
                 human_bytes(m.already).c_str());
  std::printf("%s\n", m.path.c_str());
  return 0;
}

}  // namespace clusterctl::cli
