#include "worker/model/architecture.h"

#include "worker/common/error.h"

namespace clusterctl::model {

ArchSpec arch_spec(const std::string& arch, const std::string& file) {
  for (auto make : {llama_arch, qwen2_arch, qwen3_arch, qwen3moe_arch}) {
    ArchSpec s = make();
    if (s.name == arch) return s;
  }
  throw Error(file + ": architecture '" + arch +
              "' is not supported (supported: llama, qwen2, qwen3, qwen3moe); use a model of one of these families");
}

}  // namespace clusterctl::model
