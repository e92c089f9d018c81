#pragma once
// A toy model made here by `model synth` (seed 1) in a temporary folder of its own, removed with it.
#include <unistd.h>

#include <filesystem>
#include <string>

#include "worker/model/synth.h"

namespace clusterctl::model {

struct SynthToy {
  std::filesystem::path dir;
  std::string path;
  // `threads`: synth's (0: the physical cores); the file is the same for any count.
  SynthToy(const std::string& shape, const std::string& type, const std::string& vocab, int threads = 2) {
    dir = std::filesystem::temp_directory_path() /
          ("clusterctl-toy-" + std::to_string(::getpid()) + "-" + shape + "-" + type);
    std::filesystem::create_directories(dir);
    path = (dir / (shape + "-" + type + ".gguf")).string();
    SynthOptions o;
    o.shape = shape, o.type = type, o.vocab_path = vocab, o.out_path = path, o.seed = 1, o.threads = threads;
    synth_model(o);
  }
  ~SynthToy() { std::filesystem::remove_all(dir); }
  SynthToy(const SynthToy&) = delete;
  SynthToy& operator=(const SynthToy&) = delete;
};

}  // namespace clusterctl::model
