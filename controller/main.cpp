#include <cstring>
#include <iostream>
#include <string>

#include "clusterctl/version.h"
#include "controller/cli/command.h"
#include "controller/launch/interrupt.h"
#include "worker/common/error.h"

namespace {

void print_help() {
  std::cout << "clusterctl " << clusterctl::kVersion
            << ": run one language model across a small cluster of machines.\n\n"
               "Usage: clusterctl COMMAND [ARGS] [--help]\n\nCommands:\n";
  for (const auto& c : clusterctl::cli::commands()) {
    std::string name(c.name);
    name.resize(12, ' ');
    std::cout << "  " << name << c.summary << "\n";
  }
  std::cout << "\nRun 'clusterctl COMMAND --help' for the options of a command.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version") || !std::strcmp(argv[1], "version")) {
    std::cout << "clusterctl " << clusterctl::kVersion << "\n";
    return 0;
  }
  for (const auto& c : clusterctl::cli::commands()) {
    if (c.name != argv[1]) continue;
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const clusterctl::launch::Interrupted& e) {
      std::cerr << "error: " << e.what() << "\n";
      return 128 + e.signal();
    } catch (const clusterctl::Error& e) {
      std::cerr << "error: " << e.what() << "\n";
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "error: internal: " << e.what() << "\n";
      return 70;
    }
  }
  std::cerr << "error: unknown command '" << argv[1] << "' (see 'clusterctl --help')\n";
  return 2;
}
