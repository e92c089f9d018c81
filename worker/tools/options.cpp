#include "worker/tools/options.h"

#include <iostream>

#include "worker/common/error.h"

namespace clusterctl::cli {

std::optional<po::variables_map> parse_options(int argc, char** argv, const std::string& usage,
                                               po::options_description& options,
                                               const po::positional_options_description& positional) {
  options.add_options()("help,h", "show this help");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(options).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::cout << "Usage: " << usage << "\n\n" << options << "\n";
      return std::nullopt;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error(std::string(e.what()) + " (see 'clusterctl " + argv[0] + " --help')");
  }
  return vm;
}

}  // namespace clusterctl::cli
