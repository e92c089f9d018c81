#pragma once
// Reading a cluster file's fields from yaml-cpp nodes: each reader checks a value's type and range
// and, when it is wrong, records a diagnostic at its position and carries on, so that one run
// shows every problem of the file (config_parser.cpp, config_nodes.cpp).
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "controller/config/diagnostics.h"

namespace clusterctl::config::detail {

SourcePos pos_of(const YAML::Node& n);
// A value from the file as messages show it: at most 60 characters of it, quoted.
std::string echoed(const std::string& s);
// What a node is, for "must be X, not Y" messages.
std::string kind_name(const YAML::Node& n);
// Letters, digits, '-', '_', '.' (cluster and node names).
bool valid_name(const std::string& s);

class FieldReader {
 public:
  explicit FieldReader(std::string file);

 protected:
  void add(SourcePos pos, std::string message, std::string hint);
  // A path from the file: ~ expanded, relative to the file's folder.
  std::string resolve_path(const std::string& p);
  // Reports unknown and repeated keys of a mapping.
  void check_keys(const YAML::Node& map, std::span<const std::string_view> known, const std::string& where);
  // Where `key` is written in `map` (an empty value has no useful position of its own).
  static SourcePos key_pos(const YAML::Node& map, const char* key);
  // A present, non-empty scalar, or nullopt (with a diagnostic when it is there but wrong,
  // or absent and `required`).
  std::optional<std::string> string_field(const YAML::Node& map, const char* key, const std::string& where,
                                          bool required);
  // A whole number within [min, max].
  std::optional<int> int_field(const YAML::Node& map, const char* key, const std::string& where, int min, int max);
  // A list of non-empty strings (a single string counts as a list of one); {} with a diagnostic
  // when it is something else. At most 64 entries.
  std::vector<std::string> string_list(const YAML::Node& map, const char* key, const std::string& where);
  // Seconds as a number (1, 0.5) within [min, max].
  std::optional<double> seconds_field(const YAML::Node& map, const char* key, const std::string& where, double min,
                                      double max);

  std::string file_;
  std::filesystem::path base_dir_;
  std::vector<Diagnostic> diagnostics_;
};

}  // namespace clusterctl::config::detail
