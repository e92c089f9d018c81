#include "controller/config/config_nodes.h"

#include <pwd.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <map>

#include "collectives/algorithms/allreduce.h"
#include "collectives/algorithms/emulated_link.h"
#include "collectives/network_address.h"
#include "collectives/session.h"
#include "controller/config/nearest_name.h"

namespace clusterctl::config::detail {
namespace {

constexpr std::string_view kNodeKeys[] = {"name",    "host",   "port", "user",      "identity", "ranks",
                                          "threads", "weight", "link", "cache_dir", "worker",   "memory"};
constexpr std::string_view kLinkKeys[] = {"type",          "interface",   "cidr",    "allreduce",     "transport",
                                          "tcp_interface", "wire_format", "emulate", "overlap_prompt"};
constexpr std::string_view kLinkTypes[] = {"thunderbolt", "ethernet"};

std::string current_user() {
  if (const char* u = std::getenv("USER"); u && *u) return u;
  if (const passwd* pw = getpwuid(getuid())) return pw->pw_name;
  return "root";
}

}  // namespace

std::optional<LinkConfig> NodesReader::parse_link(const YAML::Node& l, const std::string& where) {
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
  if (auto t = string_field(l, "transport", "the link of " + where, false)) {
    if (*t != "auto" && !collectives::parse_transport(*t)) {
      add(pos_of(l["transport"]), "unknown all-reduce transport " + echoed(*t) + " in " + where,
          "use auto (the table `clusterctl bench net` wrote), mpi or tcp");
      ok = false;
    }
    link.transport = *t;
  }
  if (auto t = string_field(l, "tcp_interface", "the link of " + where, false)) {
    if (const std::string why = collectives::interface_spec_error(*t); !why.empty()) {
      add(pos_of(l["tcp_interface"]), "bad tcp_interface " + echoed(*t) + " in " + where + ": " + why,
          "name the network or interface the tcp transport listens on, e.g. 'tcp_interface: 10.77.2.0/24' or "
          "'tcp_interface: tb0' (comma-separated for several; leave it out to use the link's)");
      ok = false;
    }
    link.tcp_interface = *t;
  }
  if (auto f = string_field(l, "wire_format", "the link of " + where, false)) {
    if (!collectives::parse_wire_format(*f)) {
      add(pos_of(l["wire_format"]), "unknown wire format " + echoed(*f) + " in " + where,
          "use double (exact, the default), float32, bf16 or q8");
      ok = false;
    }
    link.wire_format = *f;
  }
  if (auto o = string_field(l, "overlap_prompt", "the link of " + where, false)) {
    if (!collectives::known_overlap_mode(*o)) {
      add(pos_of(l["overlap_prompt"]), "unknown overlap_prompt " + echoed(*o) + " in " + where,
          "use auto (the default: on where the ranks are on several nodes or the link is emulated), on (a "
          "prompt's all-reduces travel while its next tokens compute) or off");
      ok = false;
    }
    link.overlap_prompt = *o;
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

NodeSettings NodesReader::parse_settings(const YAML::Node& m, const std::string& where) {
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

void NodesReader::parse_nodes(const YAML::Node& root, const NodeSettings& d, ClusterConfig& c) {
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
          "impossible split: " + where + (node.weight_by_memory ? " is weighted by memory" : " has a numeric weight") +
              " but node '" + first_name + "' " + (*first_by_memory ? "is weighted by memory" : "has a numeric weight"),
          "weight every node by number, or put 'weight: by memory' under 'defaults:' for all of them");
    }
    c.nodes.push_back(std::move(node));
  }
  for (size_t i = 1; i < c.nodes.size(); ++i) {
    const auto& a = c.nodes[0].link;
    const auto& b = c.nodes[i].link;
    if (!a || !b) continue;
    if (a->allreduce != b->allreduce || a->transport != b->transport || a->wire_format != b->wire_format ||
        a->emulate != b->emulate || a->overlap_prompt != b->overlap_prompt)
      add(b->pos,
          "the link of node '" + c.nodes[i].name +
              "' has another allreduce, transport, wire_format, emulate or overlap_prompt than node '" +
              c.nodes[0].name + "''s: every rank must all-reduce alike",
          "put allreduce, transport, wire_format, emulate and overlap_prompt in the link under 'defaults:', or give "
          "every node the same");
  }
  if (c.nodes.size() > 1) {
    for (const auto& [pos, where] : unlinked)
      add(pos, "missing field 'link' in " + where + ": a cluster of several nodes needs the link its ranks talk over",
          "add 'link: {type: thunderbolt, interface: bridge0}' (or type ethernet, or 'cidr: 10.0.0.0/24') to the "
          "node or under 'defaults:'");
  }
}

}  // namespace clusterctl::config::detail
