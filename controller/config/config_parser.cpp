// Cluster file → ClusterConfig. Every check appends a diagnostic and carries on, so one run
// shows the user every problem in the file, like a compiler.
#include <yaml-cpp/yaml.h>

#include <pwd.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "collectives/algorithms/allreduce.h"
#include "collectives/algorithms/emulated_link.h"
#include "controller/config/cluster_config.h"
#include "controller/config/nearest_name.h"
#include "controller/hub/model_ref.h"

namespace clusterctl::config {
namespace {

constexpr std::string_view kTopKeys[] = {"cluster", "model", "context",  "cache_dir", "api",
                                         "ssh",     "nodes", "defaults", "liveness",  "restart"};
constexpr std::string_view kSettingKeys[] = {"port",   "user", "identity",  "ranks",  "threads",
                                             "weight", "link", "cache_dir", "worker", "memory"};
constexpr std::string_view kNodeKeys[] = {"name",    "host",   "port", "user",      "identity", "ranks",
                                          "threads", "weight", "link", "cache_dir", "worker",   "memory"};
constexpr std::string_view kLinkKeys[] = {"type", "interface", "cidr", "allreduce", "wire_format", "emulate"};
constexpr std::string_view kLinkTypes[] = {"thunderbolt", "ethernet"};
constexpr std::string_view kApiKeys[] = {"listen",    "token_file",   "parallel",      "draft",
                                         "draft_max", "cors_origins", "allowed_hosts", "health_open"};
constexpr std::string_view kLivenessKeys[] = {"heartbeat_interval", "node_timeout", "step_timeout"};
constexpr std::string_view kSshKeys[] = {"known_hosts", "connect_timeout"};

SourcePos pos_of(const YAML::Node& n) {
  auto m = n.Mark();
  if (m.is_null()) return {};
  return {m.line + 1, m.column + 1};
}

// A value from the file as messages show it: at most kMaxEcho characters of it.
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

// The deepest a cluster file nests (its real depth is 4: nodes, a node, link, a key). yaml-cpp
// recurses once per level, so a file nesting thousands deep would exhaust the stack: refused
// before it is parsed, by the deepest of the flow brackets ([ {) and of the block structure (a
// line's indentation plus the "- " and "? " that open a level on it).
constexpr int kMaxDepth = 64;
std::optional<std::pair<int, int>> too_deep(const std::string& text) {
  int line = 1, flow = 0;
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = std::min(text.find('\n', at), text.size());
    int depth = 0;
    size_t i = at;
    while (i < end && text[i] == ' ') ++i, ++depth;
    while (i + 1 < end && (text[i] == '-' || text[i] == '?') && text[i + 1] == ' ') {
      depth += 2, i += 2;
      while (i < end && text[i] == ' ') ++i;
    }
    char quote = 0;
    for (size_t k = i; k < end; ++k) {
      const char c = text[k];
      if (quote) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '#') {
        break;
      } else if (c == '[' || c == '{') {
        if (++flow > kMaxDepth) return std::pair{line, static_cast<int>(k - at + 1)};
      } else if (c == ']' || c == '}') {
        flow = std::max(0, flow - 1);
      }
    }
    if (depth / 2 > kMaxDepth) return std::pair{line, 1};
    at = end + 1, ++line;
  }
  return std::nullopt;
}

// YAML merge keys (<<: *defaults, or a list of them), which yaml-cpp reads as a key named "<<":
// the merged mappings' keys the mapping does not have itself are copied in, in order.
void apply_merge_keys(YAML::Node node, int depth = 0) {
  if (depth > kMaxDepth) return;
  if (node.IsSequence()) {
    for (YAML::Node item : node) apply_merge_keys(item, depth + 1);
    return;
  }
  if (!node.IsMap()) return;
  if (YAML::Node merge = node["<<"]) {
    std::vector<YAML::Node> sources;
    if (merge.IsMap()) sources.push_back(merge);
    if (merge.IsSequence())
      for (YAML::Node m : merge)
        if (m.IsMap()) sources.push_back(m);
    if (!sources.empty()) {
      node.remove("<<");
      for (const YAML::Node& source : sources)
        for (auto it = source.begin(); it != source.end(); ++it)
          if (it->first.IsScalar() && !node[it->first.Scalar()]) node[it->first.Scalar()] = it->second;
    }
  }
  for (auto it = node.begin(); it != node.end(); ++it) apply_merge_keys(it->second, depth + 1);
}

bool valid_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

// Node fields that may be written on the node or once under `defaults:`.
struct NodeSettings {
  std::optional<int> port, ranks, threads;
  std::optional<std::string> user, identity, cache_dir, worker;
  std::optional<bool> by_memory;
  std::optional<double> weight;
  std::optional<LinkConfig> link;
  std::optional<uint64_t> memory;
  bool link_given = false;  // written, even if wrong (then already reported)
  SourcePos weight_pos;
};

class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) { base_dir_ = std::filesystem::path(file_).parent_path(); }

  ClusterConfig parse(const std::string& text) {
    if (auto at = too_deep(text)) {
      add({at->first, at->second}, "the file nests deeper than " + std::to_string(kMaxDepth) + " levels",
          "a cluster file is a few levels deep: start from one of the examples in configs/");
      throw ConfigError(file_, diagnostics_);
    }
    YAML::Node root;
    try {
      std::vector<YAML::Node> documents = YAML::LoadAll(text);
      if (documents.size() > 1) {
        add(pos_of(documents[1]),
            "the file holds " + std::to_string(documents.size()) + " YAML documents; a cluster file is one",
            "remove the '---' and what follows it, or keep each cluster in a file of its own");
        throw ConfigError(file_, diagnostics_);
      }
      if (!documents.empty()) root = documents.front();
    } catch (const YAML::ParserException& e) {
      add({e.mark.line + 1, e.mark.column + 1}, "YAML syntax: " + e.msg,
          "check the indentation and the ':' and '-' near this position");
      throw ConfigError(file_, diagnostics_);
    }
    apply_merge_keys(root);
    ClusterConfig c;
    c.file = file_;
    if (!root.IsMap()) {
      add(pos_of(root),
          "the cluster file must be a mapping of keys (cluster, model, nodes, ...), not " + kind_name(root),
          "start from one of the examples in configs/");
      throw ConfigError(file_, diagnostics_);
    }
    check_keys(root, kTopKeys, "at the top level");
    if (auto v = string_field(root, "cluster", "the top level", true)) {
      c.name = *v;
      if (!valid_name(c.name))
        add(pos_of(root["cluster"]),
            "cluster name " + echoed(c.name) + " has characters other than letters, digits, '-', '_', '.'",
            "use a name like 'mac-minis'");
    }
    if (auto v = string_field(root, "model", "the top level", true)) {
      c.model = *v;
      if (c.model.ends_with(".gguf") || c.model.find('/') != std::string::npos) c.model_path = resolve_path(c.model);
      std::error_code ec;
      if (!c.model_path.empty() && !std::filesystem::exists(c.model_path, ec) && hub::parse_model_ref(c.model)) {
        c.model_hub = c.model;
        c.model_path.clear();
      }
    }
    if (auto v = int_field(root, "context", "the top level", 1, 1 << 20)) c.context = *v;
    if (auto v = string_field(root, "cache_dir", "the top level", false)) c.cache_dir = *v;
    if (c.cache_dir.empty()) c.cache_dir = "~/.cache/clusterctl/shards";
    parse_api(root, c.api);
    parse_liveness(root, c.liveness);
    if (auto v = string_field(root, "restart", "the top level", false)) {
      if (*v == "on-failure" || *v == "no")
        c.restart_on_failure = *v == "on-failure";
      else
        add(pos_of(root["restart"]), "unknown restart policy " + echoed(*v),
            "write 'restart: on-failure' (restart over the nodes that remain when one is lost) or 'restart: no'");
    }
    parse_ssh(root, c.ssh);

    NodeSettings defaults;
    if (auto d = root["defaults"]; d && !d.IsNull()) {
      if (!d.IsMap())
        add(pos_of(d), "'defaults' must be a mapping of node settings, not " + kind_name(d), "");
      else {
        check_keys(d, kSettingKeys, "in 'defaults'");
        defaults = parse_settings(d, "'defaults'");
      }
    }
    parse_nodes(root, defaults, c);
    if (!diagnostics_.empty()) {
      std::stable_sort(diagnostics_.begin(), diagnostics_.end(), [](const Diagnostic& a, const Diagnostic& b) {
        return a.pos.line != b.pos.line ? a.pos.line < b.pos.line : a.pos.column < b.pos.column;
      });
      throw ConfigError(file_, diagnostics_);
    }
    return c;
  }

 private:
  void add(SourcePos pos, std::string message, std::string hint) {
    diagnostics_.push_back({pos, std::move(message), std::move(hint)});
  }

  std::string resolve_path(const std::string& p) {
    std::filesystem::path path = expand_home(p);
    if (path.is_relative() && !base_dir_.empty()) path = base_dir_ / path;
    return path.lexically_normal().string();
  }

  // Reports unknown and repeated keys of a mapping.
  void check_keys(const YAML::Node& map, std::span<const std::string_view> known, const std::string& where) {
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

  // Where `key` is written in `map` (an empty value has no useful position of its own).
  static SourcePos key_pos(const YAML::Node& map, const char* key) {
    for (auto it = map.begin(); it != map.end(); ++it)
      if (it->first.IsScalar() && it->first.Scalar() == key) return pos_of(it->first);
    return pos_of(map);
  }

  // A present, non-empty scalar, or nullopt (with a diagnostic when it is there but wrong,
  // or absent and `required`).
  std::optional<std::string> string_field(const YAML::Node& map, const char* key, const std::string& where,
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
      add(pos_of(v), "wrong type: '" + std::string(key) + "' in " + where + " must be a string, not " + kind_name(v),
          "");
      return std::nullopt;
    }
    return v.Scalar();
  }

  std::optional<int> int_field(const YAML::Node& map, const char* key, const std::string& where, int min, int max) {
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

  void parse_api(const YAML::Node& root, ApiConfig& api) {
    YAML::Node a = root["api"];
    if (!a || a.IsNull()) return;
    if (!a.IsMap()) {
      add(pos_of(a),
          "wrong type: 'api' must be a mapping (listen, token_file, parallel, draft, draft_max), not " + kind_name(a),
          "");
      return;
    }
    check_keys(a, kApiKeys, "in 'api'");
    if (auto v = string_field(a, "listen", "'api'", false)) {
      std::string why;
      if (!parse_host_port(*v, &why))
        add(pos_of(a["listen"]), "bad api listen address " + echoed(*v) + ": " + why, "write it like 127.0.0.1:8080");
      else
        api.listen = *v;
    }
    if (auto v = string_field(a, "token_file", "'api'", false)) api.token_file = resolve_path(*v);
    if (auto v = int_field(a, "parallel", "'api'", 1, 256)) api.parallel = *v;
    if (auto v = string_field(a, "draft", "'api'", false)) {
      if (*v == "ngram")
        api.draft = *v;
      else if (v->ends_with(".gguf"))
        api.draft = resolve_path(*v);
      else
        add(pos_of(a["draft"]), "api draft " + echoed(*v) + " is neither 'ngram' nor a .gguf file",
            "write 'draft: ngram' for prompt lookup, or the path of a draft model with the model's vocabulary on the "
            "first node, e.g. 'draft: ~/models/Llama-3.2-1B-Q4_0.gguf'");
    }
    if (auto v = int_field(a, "draft_max", "'api'", 1, 64)) {
      if (!a["draft"])
        add(pos_of(a["draft_max"]), "api draft_max without api draft drafts nothing",
            "add 'draft: ngram' or 'draft: DRAFT.gguf', or remove draft_max");
      api.draft_max = *v;
    }
    for (const auto& origin : string_list(a, "cors_origins", "'api'")) {
      if (origin == "*" || origin.starts_with("http://") || origin.starts_with("https://"))
        api.cors_origins.push_back(origin);
      else
        add(pos_of(a["cors_origins"]), "bad origin " + echoed(origin) + " in 'api' cors_origins",
            "write an origin like https://app.example or http://localhost:3000 (or *)");
    }
    for (const auto& host : string_list(a, "allowed_hosts", "'api'")) {
      if (host.size() <= 253 && host.find_first_of(" /\\@") == std::string::npos)
        api.allowed_hosts.push_back(host);
      else
        add(pos_of(a["allowed_hosts"]), "bad host name " + echoed(host) + " in 'api' allowed_hosts",
            "write a host name as clients put it in the Host header, e.g. chat.local");
    }
    if (auto v = a["health_open"]) {
      if (v.IsScalar() && (v.Scalar() == "true" || v.Scalar() == "false"))
        api.health_open = v.Scalar() == "true";
      else
        add(pos_of(v), "wrong type: 'health_open' in 'api' must be true or false, not " + kind_name(v),
            "write 'health_open: true' to let probes read /health without the token");
    }
  }

  // A list of non-empty strings (a single string counts as a list of one); {} with a diagnostic
  // when it is something else. At most 64 entries.
  std::vector<std::string> string_list(const YAML::Node& map, const char* key, const std::string& where) {
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

  // Seconds as a number (1, 0.5) within [min, max].
  std::optional<double> seconds_field(const YAML::Node& map, const char* key, const std::string& where, double min,
                                      double max) {
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

  void parse_liveness(const YAML::Node& root, LivenessConfig& l) {
    YAML::Node m = root["liveness"];
    if (!m || m.IsNull()) return;
    if (!m.IsMap()) {
      add(pos_of(m),
          "wrong type: 'liveness' must be a mapping (heartbeat_interval, node_timeout, step_timeout), not " +
              kind_name(m),
          "write e.g. 'liveness: {node_timeout: 6}'");
      return;
    }
    check_keys(m, kLivenessKeys, "in 'liveness'");
    if (auto v = seconds_field(m, "heartbeat_interval", "'liveness'", 0.05, 60)) l.heartbeat_interval_s = *v;
    if (auto v = seconds_field(m, "node_timeout", "'liveness'", 0.1, 3600)) {
      char interval[32];
      std::snprintf(interval, sizeof interval, "%g", l.heartbeat_interval_s);
      if (*v < 2 * l.heartbeat_interval_s)
        add(pos_of(m["node_timeout"]),
            "'node_timeout' in 'liveness' must be at least twice heartbeat_interval (" + std::string(interval) +
                " s), or one late heartbeat loses a node",
            "raise node_timeout or lower heartbeat_interval");
      else
        l.node_timeout_s = *v;
    } else if (l.node_timeout_s < 2 * l.heartbeat_interval_s) {
      l.node_timeout_s = 2 * l.heartbeat_interval_s;
    }
    if (auto v = seconds_field(m, "step_timeout", "'liveness'", 0, 86400)) l.step_timeout_s = *v;
  }

  void parse_ssh(const YAML::Node& root, SshConfig& ssh) {
    ssh.known_hosts = expand_home("~/.ssh/known_hosts");
    YAML::Node s = root["ssh"];
    if (!s || s.IsNull()) return;
    if (!s.IsMap()) {
      add(pos_of(s), "wrong type: 'ssh' must be a mapping (known_hosts, connect_timeout), not " + kind_name(s), "");
      return;
    }
    check_keys(s, kSshKeys, "in 'ssh'");
    if (auto v = string_field(s, "known_hosts", "'ssh'", false)) ssh.known_hosts = resolve_path(*v);
    if (auto v = int_field(s, "connect_timeout", "'ssh'", 1, 600)) ssh.connect_timeout_s = *v;
  }

  std::optional<LinkConfig> parse_link(const YAML::Node& l, const std::string& where) {
    if (!l.IsMap()) {
      add(pos_of(l),
          "wrong type: 'link' in " + where + " must be a mapping (type, interface or cidr), not " + kind_name(l),
          "write e.g. 'link: {type: thunderbolt, interface: bridge0}'");
      return std::nullopt;
    }
    check_keys(l, kLinkKeys, "in the link of " + where);
    LinkConfig link;
    link.pos = pos_of(l);
    bool ok = true;
    if (auto t = string_field(l, "type", "the link of " + where, true)) {
      if (*t == "thunderbolt")
        link.type = LinkType::thunderbolt;
      else if (*t == "ethernet")
        link.type = LinkType::ethernet;
      else {
        std::string nearest = nearest_name(*t, kLinkTypes);
        add(pos_of(l["type"]), "unknown link type " + echoed(*t) + " in " + where,
            nearest.empty() ? "use 'thunderbolt' or 'ethernet'" : "did you mean '" + nearest + "'?");
        ok = false;
      }
    } else {
      ok = false;
    }
    auto iface = string_field(l, "interface", "the link of " + where, false);
    auto cidr = string_field(l, "cidr", "the link of " + where, false);
    if (iface && cidr) {
      add(pos_of(l), "the link of " + where + " has both 'interface' and 'cidr'", "keep one of them");
      ok = false;
    } else if (!iface && !cidr && !l["interface"] && !l["cidr"]) {
      add(pos_of(l), "missing field 'interface' or 'cidr' in the link of " + where,
          "name the interface (e.g. 'interface: bridge0') or its network (e.g. 'cidr: 10.0.0.0/24')");
      ok = false;
    }
    if (iface) {
      if (iface->empty() || iface->find_first_of(" /\t") != std::string::npos) {
        add(pos_of(l["interface"]), "bad interface name " + echoed(*iface) + " in " + where,
            "an interface name has no spaces or '/'; for a network write 'cidr: " + *iface + "'");
        ok = false;
      }
      link.interface = *iface;
    }
    if (cidr) {
      std::string why;
      link.cidr = parse_cidr(*cidr, &why);
      if (!link.cidr) {
        add(pos_of(l["cidr"]), "bad CIDR " + echoed(*cidr) + " in " + where + ": " + why, "write it like 10.0.0.0/24");
        ok = false;
      }
    }
    if (auto a = string_field(l, "allreduce", "the link of " + where, false)) {
      if (*a != "auto" && !collectives::parse_algorithm(*a)) {
        add(pos_of(l["allreduce"]), "unknown all-reduce algorithm " + echoed(*a) + " in " + where,
            "use auto, mpi, one-shot, recursive-doubling or ring");
        ok = false;
      }
      link.allreduce = *a;
    }
    if (auto f = string_field(l, "wire_format", "the link of " + where, false)) {
      if (!collectives::parse_wire_format(*f)) {
        add(pos_of(l["wire_format"]), "unknown wire format " + echoed(*f) + " in " + where,
            "use double (exact, the default), float32, bf16 or q8");
        ok = false;
      }
      link.wire_format = *f;
    }
    if (auto e = string_field(l, "emulate", "the link of " + where, false)) {
      try {
        collectives::parse_link_spec(*e);
        link.emulate = *e;
      } catch (const std::exception& ex) {
        std::string why = ex.what();
        if (why.rfind("--emulate-link: ", 0) == 0) why = why.substr(16);
        add(pos_of(l["emulate"]), "bad link emulation " + echoed(*e) + " in " + where + ": " + why,
            "write e.g. 'emulate: latency=300us,bandwidth=10gbit' (EMULATION for measuring; leave it out on a real "
            "link)");
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return link;
  }

  NodeSettings parse_settings(const YAML::Node& m, const std::string& where) {
    NodeSettings s;
    s.port = int_field(m, "port", where, 1, 65535);
    s.ranks = int_field(m, "ranks", where, 1, 1024);
    s.threads = int_field(m, "threads", where, 0, 4096);
    s.user = string_field(m, "user", where, false);
    if (auto v = string_field(m, "identity", where, false)) s.identity = resolve_path(*v);
    s.cache_dir = string_field(m, "cache_dir", where, false);
    s.worker = string_field(m, "worker", where, false);
    if (YAML::Node w = m["weight"]) {
      s.weight_pos = pos_of(w);
      double value = 0;
      bool numeric = false;
      if (w.IsScalar()) {
        const std::string& text = w.Scalar();
        char* end = nullptr;
        value = std::strtod(text.c_str(), &end);
        numeric = !text.empty() && end == text.c_str() + text.size() && std::isfinite(value);
      }
      if (w.IsScalar() && w.Scalar() == "by memory") {
        s.by_memory = true;
      } else if (!numeric) {
        add(pos_of(w), "wrong type: 'weight' in " + where + " must be a number or 'by memory', not " + kind_name(w),
            "write e.g. 'weight: 2' (twice the share of a node with weight 1) or 'weight: by memory'");
      } else if (value <= 0) {
        add(pos_of(w),
            "impossible split: 'weight' in " + where + " is " + w.Scalar() + "; a node's weight must be above 0",
            "give the node a positive weight, or remove the node");
      } else {
        s.by_memory = false;
        s.weight = value;
      }
    }
    if (auto v = string_field(m, "memory", where, false)) {
      auto bytes = parse_byte_size(*v);
      if (!bytes || *bytes == 0)
        add(pos_of(m["memory"]), "bad memory size " + echoed(*v) + " in " + where,
            "write a size like 'memory: 8GiB' or 'memory: 512MiB' (the most clusterctl may use on the node)");
      else
        s.memory = *bytes;
    }
    if (YAML::Node l = m["link"]; l && !l.IsNull()) {
      s.link_given = true;
      s.link = parse_link(l, where);
    }
    return s;
  }

  static std::string current_user() {
    if (const char* u = std::getenv("USER"); u && *u) return u;
    if (const passwd* pw = getpwuid(getuid())) return pw->pw_name;
    return "root";
  }

  void parse_nodes(const YAML::Node& root, const NodeSettings& d, ClusterConfig& c) {
    YAML::Node nodes = root["nodes"];
    if (!nodes) {
      add(pos_of(root), "missing field 'nodes' at the top level",
          "list the machines under 'nodes:' (see configs/local.yaml)");
      return;
    }
    c.nodes_pos = pos_of(nodes);
    if (!nodes.IsSequence() || nodes.size() == 0) {
      add(pos_of(nodes), "'nodes' must be a non-empty list of nodes, not " + kind_name(nodes),
          "write each node as '- name: ...' on its own line");
      return;
    }
    std::map<std::string, SourcePos> names, endpoints;
    std::optional<bool> first_by_memory;
    std::string first_name;
    std::vector<std::pair<SourcePos, std::string>> unlinked;
    for (size_t i = 0; i < nodes.size(); ++i) {
      YAML::Node n = nodes[i];
      std::string where = "node " + std::to_string(i + 1);
      if (!n.IsMap()) {
        add(pos_of(n), "wrong type: " + where + " must be a mapping (name, host, ...), not " + kind_name(n), "");
        continue;
      }
      NodeConfig node;
      node.pos = pos_of(n);
      if (auto v = string_field(n, "name", where, true)) {
        node.name = *v;
        where = "node " + echoed(node.name);
        if (!valid_name(node.name))
          add(pos_of(n["name"]),
              "node name " + echoed(node.name) + " has characters other than letters, digits, '-', '_', '.'", "");
        else if (auto [prev, fresh] = names.emplace(node.name, pos_of(n["name"])); !fresh)
          add(pos_of(n["name"]), "duplicate node name " + echoed(node.name),
              "the first node named " + echoed(node.name) + " is at line " + std::to_string(prev->second.line) +
                  "; give each node its own name");
      }
      check_keys(n, kNodeKeys, "in " + where);
      if (auto v = string_field(n, "host", where, true)) {
        node.host = *v;
        node.host_pos = pos_of(n["host"]);
        if (node.host.find_first_of(" \t/@") != std::string::npos)
          add(node.host_pos, "bad host '" + node.host + "' in " + where,
              "write a host name or an IP address; put the user in 'user:'");
      }
      NodeSettings s = parse_settings(n, where);
      node.port = s.port.value_or(d.port.value_or(22));
      node.ranks = s.ranks.value_or(d.ranks.value_or(1));
      node.threads = s.threads.value_or(d.threads.value_or(0));
      node.user = s.user.value_or(d.user.value_or(current_user()));
      node.identity = s.identity.value_or(d.identity.value_or(""));
      node.cache_dir = s.cache_dir.value_or(d.cache_dir.value_or(c.cache_dir));
      node.worker = s.worker.value_or(d.worker.value_or("clusterctl-worker"));
      node.link = s.link ? s.link : d.link;
      if (!node.link && !s.link_given && !d.link_given) unlinked.emplace_back(node.pos, where);
      node.weight_by_memory = s.by_memory.value_or(d.by_memory.value_or(false));
      node.weight = s.weight.value_or(d.weight.value_or(1.0));
      node.memory_limit = s.memory.value_or(d.memory.value_or(0));
      if (!node.host.empty()) {
        std::string endpoint = node.host + ":" + std::to_string(node.port);
        if (auto [prev, fresh] = endpoints.emplace(endpoint, node.host_pos); !fresh)
          add(node.host_pos,
              "duplicate node: " + where + " has the same host and port (" + endpoint + ") as the node at line " +
                  std::to_string(prev->second.line),
              "each node is one machine; to run more processes on it, raise its 'ranks'");
      }
      if (!first_by_memory) {
        first_by_memory = node.weight_by_memory;
        first_name = node.name;
      } else if (node.weight_by_memory != *first_by_memory) {
        add(n["weight"] ? pos_of(n["weight"]) : node.pos,
            "impossible split: " + where +
                (node.weight_by_memory ? " is weighted by memory" : " has a numeric weight") + " but node '" +
                first_name + "' " + (*first_by_memory ? "is weighted by memory" : "has a numeric weight"),
            "weight every node by number, or put 'weight: by memory' under 'defaults:' for all of them");
      }
      c.nodes.push_back(std::move(node));
    }
    for (size_t i = 1; i < c.nodes.size(); ++i) {
      const auto& a = c.nodes[0].link;
      const auto& b = c.nodes[i].link;
      if (!a || !b) continue;
      if (a->allreduce != b->allreduce || a->wire_format != b->wire_format || a->emulate != b->emulate)
        add(b->pos,
            "the link of node '" + c.nodes[i].name + "' has another allreduce, wire_format or emulate than node '" +
                c.nodes[0].name + "''s: every rank must all-reduce alike",
            "put allreduce, wire_format and emulate in the link under 'defaults:', or give every node the same");
    }
    if (c.nodes.size() > 1) {
      for (const auto& [pos, where] : unlinked)
        add(pos, "missing field 'link' in " + where + ": a cluster of several nodes needs the link its ranks talk over",
            "add 'link: {type: thunderbolt, interface: bridge0}' (or type ethernet, or 'cidr: 10.0.0.0/24') to the "
            "node or under 'defaults:'");
    }
  }

  std::string file_;
  std::filesystem::path base_dir_;
  std::vector<Diagnostic> diagnostics_;
};

}  // namespace

std::optional<uint64_t> parse_byte_size(const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || !std::isfinite(value) || value < 0) return std::nullopt;
  std::string unit(end);
  while (!unit.empty() && unit.front() == ' ') unit.erase(unit.begin());
  static const std::pair<const char*, double> kUnits[] = {{"", 1},
                                                          {"B", 1},
                                                          {"K", 1e3},
                                                          {"KB", 1e3},
                                                          {"KiB", 1024.0},
                                                          {"M", 1e6},
                                                          {"MB", 1e6},
                                                          {"MiB", 1048576.0},
                                                          {"G", 1e9},
                                                          {"GB", 1e9},
                                                          {"GiB", 1073741824.0},
                                                          {"T", 1e12},
                                                          {"TB", 1e12},
                                                          {"TiB", 1099511627776.0}};
  for (const auto& [name, scale] : kUnits)
    if (unit == name) return uint64_t(value * scale);
  return std::nullopt;
}

ClusterConfig parse_cluster_config(const std::string& text, const std::string& file) {
  return Parser(file).parse(text);
}

ClusterConfig load_cluster_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read cluster file '" + path + "': " + std::strerror(errno) + " (check the path)");
  // Read one byte past the bound, so a larger file (or an endless one: /dev/zero) is noticed.
  std::string text(kMaxClusterFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxClusterFileBytes)
    throw Error("cluster file '" + path + "' is larger than " + std::to_string(kMaxClusterFileBytes / 1024) +
                " KiB: not a cluster file (check the path; a cluster file is a few dozen lines)");
  return parse_cluster_config(text, path);
}

}  // namespace clusterctl::config
