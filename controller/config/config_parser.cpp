// Cluster file → ClusterConfig. Every check appends a diagnostic and carries on, so one run
// shows the user every problem in the file, like a compiler.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "controller/config/cluster_config.h"
#include "controller/config/config_nodes.h"
#include "controller/config/yaml_fields.h"
#include "controller/config/yaml_shape.h"
#include "controller/hub/model_ref.h"

namespace clusterctl::config {
namespace {

using namespace detail;

constexpr std::string_view kTopKeys[] = {"cluster", "model",    "context",  "cache_dir", "api",   "ssh",
                                         "nodes",   "defaults", "liveness", "restart",   "layout"};
constexpr std::string_view kApiKeys[] = {"listen",    "token_file",   "parallel",      "draft",
                                         "draft_max", "cors_origins", "allowed_hosts", "health_open"};
constexpr std::string_view kLivenessKeys[] = {"heartbeat_interval", "node_timeout", "step_timeout"};
constexpr std::string_view kSshKeys[] = {"known_hosts", "connect_timeout"};

class Parser : public NodesReader {
 public:
  explicit Parser(std::string file) : NodesReader(std::move(file)) {}

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
    if (auto v = string_field(root, "layout", "the top level", false)) {
      if (*v == "auto" || *v == "split-attention" || *v == "replicated-attention")
        c.layout = *v;
      else
        add(pos_of(root["layout"]), "unknown layout " + echoed(*v),
            "write 'layout: split-attention' (two all-reduces per layer, attention cut over the ranks), "
            "'layout: replicated-attention' (one all-reduce per layer: every node holds the whole attention and KV "
            "cache) or 'layout: auto' (what 'clusterctl plan' predicts faster on this link)");
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
