#pragma once
#include <span>
#include <string_view>

namespace clusterctl::cli {

// One verb of `clusterctl`. `run` receives the arguments after the verb
// (argv[0] is the verb itself) and returns the process exit code.
struct Command {
  std::string_view name;
  std::string_view summary;
  int (*run)(int argc, char** argv);
};

std::span<const Command> commands();

}  // namespace clusterctl::cli
