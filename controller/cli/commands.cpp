#include "controller/cli/command.h"

namespace clusterctl::cli {

int inspect_main(int argc, char** argv);
int tokenize_main(int argc, char** argv);
int config_main(int argc, char** argv);

std::span<const Command> commands() {
  static const Command kCommands[] = {
      {"inspect", "show a GGUF model's architecture, hyperparameters and tensors", inspect_main},
      {"tokenize", "turn text into token ids with a model's tokenizer", tokenize_main},
      {"config", "check a cluster file: 'config validate CLUSTER.yaml'", config_main},
  };
  return kCommands;
}

}  // namespace clusterctl::cli
