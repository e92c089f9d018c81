#pragma once
#include <boost/program_options.hpp>
#include <optional>
#include <string>

namespace clusterctl::cli {

namespace po = boost::program_options;

// Parses one verb's arguments. Prints `usage` and the options and returns nullopt on --help;
// throws clusterctl::Error naming the bad argument (and pointing at --help) otherwise.
std::optional<po::variables_map> parse_options(int argc, char** argv, const std::string& usage,
                                               po::options_description& options,
                                               const po::positional_options_description& positional);

}  // namespace clusterctl::cli
