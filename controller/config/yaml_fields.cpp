#include "controller/config/yaml_fields.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>

#include "controller/config/cluster_config.h"
#include "controller/config/nearest_name.h"

namespace clusterctl::config::detail {

SourcePos pos_of(const YAML::Node& n) {
  auto m = n.Mark();
  if (m.is_null()) return {};
  return {m.line + 1, m.column + 1};
}

constexpr size_t kMaxEcho = 60;
std::string echoed(const std::string& s) {
  if (s.size() <= kMaxEcho) return "'" + s + "'";
  return "'" + s.substr(0, kMaxEcho) + "...' (" + std::to_string(s.size()) + " characters)";
}

std::string kind_name(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "empty";
    case YAML::NodeType::Scalar:
      return echoed(n.Scalar());
    default:
      return "undefined";
  }
}

bool valid_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

FieldReader::FieldReader(std::string file) : file_(std::move(file)) {
  base_dir_ = std::filesystem::path(file_).parent_path();
}

void FieldReader::add(SourcePos pos, std::string message, std::string hint) {
  diagnostics_.push_back({pos, std::move(message), std::move(hint)});
}

std::string FieldReader::resolve_path(const std::string& p) {
  std::filesystem::path path = expand_home(p);
  if (path.is_relative() && !base_dir_.empty()) path = base_dir_ / path;
  return path.lexically_normal().string();
}

void FieldReader::check_keys(const YAML::Node& map, std::span<const std::string_view> known, const std::string& where) {
  std::map<std::string, SourcePos> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar()) {
      add(pos_of(it->first), "a key must be a plain name, not " + kind_name(it->first), "");
      continue;
    }
    const std::string key = it->first.Scalar();
    if (auto [prev, fresh] = seen.emplace(key, pos_of(it->first)); !fresh) {
      add(pos_of(it->first), "duplicate key " + echoed(key) + " " + where,
          "the first " + echoed(key) + " is at line " + std::to_string(prev->second.line) + "; keep one");
      continue;
    }
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string nearest = nearest_name(key, known);
    std::string list;
    for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    add(pos_of(it->first), "unknown key " + echoed(key) + " " + where,
        nearest.empty() ? "known keys here: " + list : "did you mean '" + nearest + "'?");
  }
}

SourcePos FieldReader::key_pos(const YAML::Node& map, const char* key) {
  for (auto it = map.begin(); it != map.end(); ++it)
    if (it->first.IsScalar() && it->first.Scalar() == key) return pos_of(it->first);
  return pos_of(map);
}

std::optional<std::string> FieldReader::string_field(const YAML::Node& map, const char* key, const std::string& where,
                                                     bool required) {
  YAML::Node v = map[key];
  if (!v) {
    if (required)
      add(pos_of(map), "missing field '" + std::string(key) + "' in " + where,
          "add '" + std::string(key) + ": ...' here");
    return std::nullopt;
  }
  if (v.IsNull()) {
    add(key_pos(map, key), "'" + std::string(key) + "' in " + where + " has no value",
        "write a value after '" + std::string(key) + ":'");
    return std::nullopt;
  }
  if (!v.IsScalar()) {
    add(pos_of(v), "wrong type: '" + std::string(key) + "' in " + where + " must be a string, not " + kind_name(v), "");
    return std::nullopt;
  }
  return v.Scalar();
}

std::optional<int> FieldReader::int_field(const YAML::Node& map, const char* key, const std::string& where, int min,
                                          int max) {
  YAML::Node v = map[key];
  if (!v) return std::nullopt;
  long long value = 0;
  bool ok = v.IsScalar();
  if (ok) {
    const std::string& s = v.Scalar();
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    ok = ec == std::errc() && p == s.data() + s.size() && !s.empty();
  }
  if (!ok) {
    add(pos_of(v),
        "wrong type: '" + std::string(key) + "' in " + where + " must be a whole number, not " + kind_name(v),
        "write a number from " + std::to_string(min) + " to " + std::to_string(max));
    return std::nullopt;
  }
  if (value < min || value > max) {
    bool is_port = std::string_view(key) == "port";
    add(pos_of(v),
        (is_port ? "port " : "'" + std::string(key) + "' ") + std::to_string(value) + " in " + where +
            " is out of range",
        "use a number from " + std::to_string(min) + " to " + std::to_string(max));
    return std::nullopt;
  }
  return int(value);
}

std::vector<std::string> FieldReader::string_list(const YAML::Node& map, const char* key, const std::string& where) {
  YAML::Node v = map[key];
  std::vector<std::string> out;
  if (!v || v.IsNull()) return out;
  if (v.IsScalar() && !v.Scalar().empty()) return {v.Scalar()};
  bool ok = v.IsSequence() && v.size() <= 64;
  for (size_t i = 0; ok && i < v.size(); ++i) {
    ok = v[i].IsScalar() && !v[i].Scalar().empty();
    if (ok) out.push_back(v[i].Scalar());
  }
  if (!ok) {
    add(pos_of(v), "wrong type: '" + std::string(key) + "' in " + where + " must be a list of at most 64 strings",
        "write e.g. '" + std::string(key) + ": [first, second]'");
    out.clear();
  }
  return out;
}

std::optional<double> FieldReader::seconds_field(const YAML::Node& map, const char* key, const std::string& where,
                                                 double min, double max) {
  YAML::Node v = map[key];
  if (!v) return std::nullopt;
  double value = 0;
  bool ok = v.IsScalar() && !v.Scalar().empty();
  if (ok) {
    const std::string& s = v.Scalar();
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    ok = ec == std::errc() && p == s.data() + s.size();
  }
  char range[96];
  std::snprintf(range, sizeof range, "a number of seconds from %g to %g", min, max);
  if (!ok) {
    add(pos_of(v),
        "wrong type: '" + std::string(key) + "' in " + where + " must be " + range + ", not " +
            (v.IsScalar() ? echoed(v.Scalar()) : kind_name(v)),
        std::string("write ") + range);
    return std::nullopt;
  }
  if (!(value >= min && value <= max)) {
    add(pos_of(v), "'" + std::string(key) + "' " + v.Scalar() + " in " + where + " is out of range",
        std::string("use ") + range);
    return std::nullopt;
  }
  return value;
}

}  // namespace clusterctl::config::detail
