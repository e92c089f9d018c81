#include "controller/preflight/preflight.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "controller/launch/local_worker.h"
#include "controller/preflight/node_shell.h"
#include "controller/preflight/probe_parsers.h"
#include "controller/ssh/parallel.h"
#include "worker/common/human_bytes.h"
#include "worker/gguf/gguf_file.h"
#include "worker/model/hparams.h"
#include "worker/model/kv_cache.h"

namespace clusterctl::preflight {

std::string_view status_name(CheckStatus s) {
  switch (s) {
    case CheckStatus::ok:
      return "ok";
    case CheckStatus::warn:
      return "WARN";
    case CheckStatus::fail:
      return "FAIL";
    default:
      return "skipped";
  }
}

bool PreflightReport::ok() const {
  return std::none_of(results.begin(), results.end(),
                      [](const CheckResult& r) { return r.status == CheckStatus::fail; });
}

namespace {

struct ModelFootprint {
  std::string path;
  uint64_t tensor_bytes = 0;
  uint64_t parameters = 0;
  uint64_t kv_bytes = 0;  // the whole model's KV cache: `parallel` sequences of `context` tokens (F16)
  // Latent attention (deepseek2) keeps the same latent cache on every rank instead of cutting it.
  bool kv_on_every_rank = false;
  int context = 0;
};

std::optional<ModelFootprint> model_footprint(const config::ClusterConfig& c, CheckResult& row) {
  row = {"controller", "model", CheckStatus::ok, "", "", ""};
  std::string path = c.model_path;
  if (path.empty()) path = config::expand_home("~/.cache/clusterctl/models/" + c.model + ".gguf");
  if (c.model_path.empty() && !c.model_hub.empty()) {
    row.status = CheckStatus::warn;
    row.detail = "model '" + c.model_hub + "' not pulled yet";
    row.cause = c.model_hub +
                " is a model on Hugging Face that is not in the hub cache here, so the memory check "
                "cannot size the shards";
    row.fix = "pull it with `clusterctl pull " + c.model_hub + "` (`up` pulls it too)";
    return std::nullopt;
  }
  if (!std::filesystem::exists(path)) {
    row.status = CheckStatus::warn;
    row.detail = "model '" + c.model + "' not found here";
    row.cause = "no model file at " + path + ", so the memory check cannot size the shards";
    row.fix = c.model_path.empty() ? "download the model to " + path + " or give 'model' as a path to a .gguf file"
                                   : "correct 'model' in " + c.file;
    return std::nullopt;
  }
  try {
    gguf::GgufFile f(path);
    auto h = model::HParams::from_gguf(f);
    ModelFootprint m;
    m.path = path;
    for (const auto& t : f.tensors()) m.tensor_bytes += t.n_bytes, m.parameters += t.n_elements;
    m.kv_on_every_rank = h.latent_attention();
    m.context = c.context > 0 ? c.context : int(std::min<uint32_t>(h.n_ctx_train ? h.n_ctx_train : 4096, 4096));
    // The API's sequences each hold a KV-cache slot of the whole context.
    m.kv_bytes =
        model::KvCache::bytes_per_token(h, model::Partition::whole(h)) * uint64_t(m.context) * uint64_t(c.api.parallel);
    row.detail = path + ": " + human_bytes(m.tensor_bytes) + " of weights, KV cache " + human_bytes(m.kv_bytes) +
                 " for " + std::to_string(c.api.parallel) + " x " + std::to_string(m.context) + " tokens";
    return m;
  } catch (const Error& e) {
    row.status = CheckStatus::fail;
    row.detail = "unreadable";
    row.cause = e.what();
    row.fix = "point 'model' at a valid GGUF file";
    return std::nullopt;
  }
}

class NodeProbe {
 public:
  NodeProbe(const config::ClusterConfig& c, size_t index, const PreflightOptions& o)
      : c_(c), node_(c.nodes[index]), options_(o) {}

  void run() {
    if (!connect()) return;
    check_os();
    check_memory_available();
    probe_disk();
    check_link();
    check_worker();
    check_mpirun();
  }

  void check_reach(const std::vector<std::pair<std::string, uint32_t>>& peers, const std::string& link_name) {
    if (!shell_) return;
    if (peers.empty()) {
      add("reach", CheckStatus::skipped, "no other node's link address is known (see the link checks)");
      return;
    }
    std::string ping = facts.os == "Darwin" ? "ping -c1 -t1" : "ping -c1 -W1";
    std::string script;
    for (const auto& [name, addr] : peers) {
      std::string a = config::ipv4_to_string(addr);
      script += "if " + ping + " " + a + " >/dev/null 2>&1; then echo '" + a + " ok'; else echo '" + a + " fail'; fi; ";
    }
    auto r =
        exec("reach", kNodePath + std::string("command -v ping >/dev/null || { echo no-ping; exit 0; }; ") + script);
    if (!r) return;
    if (r->out.starts_with("no-ping")) {
      add("reach", CheckStatus::fail, "ping missing",
          "ping is not installed on " + node_.name + ", so reachability cannot be checked",
          facts.os == "Darwin" ? "ping is part of macOS; check the node's PATH" : "sudo apt-get install iputils-ping");
      return;
    }
    std::string reached, missed;
    for (const auto& [name, addr] : peers) {
      std::string a = config::ipv4_to_string(addr);
      bool ok = r->out.find(a + " ok") != std::string::npos;
      (ok ? reached : missed) += (ok ? reached : missed).empty() ? "" : ", ";
      (ok ? reached : missed) += name + " (" + a + ")";
    }
    if (missed.empty()) {
      add("reach", CheckStatus::ok, "reaches " + reached + " over " + link_name);
    } else {
      add("reach", CheckStatus::fail, "cannot reach " + missed,
          node_.name + " gets no ping answer from " + missed + " over " + link_name,
          "check the cable/switch and that both ends of " + link_name +
              " are up with addresses in one subnet, and that no firewall drops ICMP");
    }
  }

  // mpirun on the head node starts every other node's ranks with `ssh ADDRESS orted ...` (the
  // hostfile's link addresses, the head's own ssh client, keys and known_hosts, no password):
  // each must work from the head as it is, or `up` ends in an Open MPI message that hides why.
  void check_head_ssh(const std::vector<std::pair<std::string, uint32_t>>& peers) {
    if (!shell_ || peers.empty()) return;
    std::string script = kNodePath + std::string("command -v ssh >/dev/null || { echo no-ssh; exit 0; }; ");
    for (const auto& [name, addr] : peers) {
      const std::string a = config::ipv4_to_string(addr);
      script += "( e=$(ssh -o BatchMode=yes -o ConnectTimeout=5 " + a + " true 2>&1 </dev/null) && echo '" + a +
                " ok' || echo \"" + a + " fail $(printf %s \"$e\" | tr '\\n' ' ' | cut -c1-200)\" ) & ";
    }
    script += "wait";
    auto r = exec("head ssh", script);
    if (!r) return;
    if (r->out.starts_with("no-ssh")) {
      add("head ssh", CheckStatus::fail, "ssh missing",
          "mpirun on " + node_.name + " starts the other nodes' ranks over ssh, but " + node_.name +
              " has no ssh client",
          facts.os == "Darwin" ? "ssh is part of macOS; check the node's PATH" : "sudo apt-get install openssh-client");
      return;
    }
    std::string reached, failed, first_fix;
    for (const auto& [name, addr] : peers) {
      const std::string a = config::ipv4_to_string(addr);
      const auto at = r->out.find(a + " ");
      const bool ok = at != std::string::npos && r->out.compare(at + a.size() + 1, 2, "ok") == 0;
      if (ok) {
        reached += (reached.empty() ? "" : ", ") + name + " (" + a + ")";
        continue;
      }
      std::string why = at == std::string::npos ? "no answer" : r->out.substr(at + a.size() + 6);
      why = why.substr(0, why.find('\n'));
      while (!why.empty() && why.back() == ' ') why.pop_back();
      failed += (failed.empty() ? "" : "; ") + name + " (" + a + "): " + (why.empty() ? "ssh failed" : why);
      if (first_fix.empty())
        first_fix = "on " + node_.name + ", make 'ssh " + a + " true' work without a password: " + node_.name +
                    "'s public key in " + name + "'s ~/.ssh/authorized_keys, and " + name + "'s host key for " + a +
                    " in " + node_.name + "'s ~/.ssh/known_hosts (run 'ssh " + a + "' once on " + node_.name +
                    " and check the fingerprint)";
    }
    if (failed.empty())
      add("head ssh", CheckStatus::ok, "mpirun's ssh reaches " + reached);
    else
      add("head ssh", CheckStatus::fail, "cannot ssh to " + failed.substr(0, failed.find(" (")),
          "mpirun on " + node_.name + " starts the other nodes' ranks over ssh, which fails for " + failed, first_fix);
  }

  bool stopped() const { return options_.stop && *options_.stop; }

  std::vector<CheckResult> results;
  NodeFacts facts;
  bool still_running = false;  // an interrupted check could not be stopped on the node

 private:
  void add(std::string check, CheckStatus s, std::string detail, std::string cause = "", std::string fix = "") {
    results.push_back({node_.name, std::move(check), s, std::move(detail), std::move(cause), std::move(fix)});
  }

  std::optional<ExecResult> exec(const std::string& check, const std::string& command) {
    if (stopped()) return std::nullopt;
    try {
      return shell_->run(command, std::chrono::seconds(15), options_.stop);
    } catch (const ssh::SshError& e) {
      if (e.kind() == ssh::SshFailure::interrupted) {
        still_running |= !e.fix().starts_with("stopped");
        return std::nullopt;
      }
      add(check, CheckStatus::fail, "could not run", e.cause(), e.fix());
      return std::nullopt;
    }
  }

  bool connect() {
    auto start = std::chrono::steady_clock::now();
    try {
      shell_ = open_node_shell(c_, node_);
    } catch (const ssh::SshError& e) {
      std::string detail = node_.ssh_address();
      switch (e.kind()) {
        case ssh::SshFailure::host_key_unknown:
          detail += ": host key unknown";
          break;
        case ssh::SshFailure::host_key_changed:
          detail += ": host key CHANGED";
          break;
        case ssh::SshFailure::auth:
          detail += ": login refused";
          break;
        case ssh::SshFailure::timeout:
          detail += ": no answer";
          break;
        default:
          detail += e.cause().find("refused") != std::string::npos       ? ": connection refused"
                    : e.cause().find("unreachable") != std::string::npos ? ": unreachable"
                                                                         : ": connection failed";
      }
      add("ssh", CheckStatus::fail, detail, e.cause(), e.fix());
      for (const char* check : {"os/arch", "memory", "disk", "link", "worker", "mpirun", "reach"})
        add(check, CheckStatus::skipped, "needs ssh");
      return false;
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    facts.reachable = true;
    add("ssh", CheckStatus::ok, shell_->describe() + (node_.is_local() ? "" : ", " + std::to_string(ms) + " ms"));
    return true;
  }

  void check_os() {
    auto r = exec("os/arch", "uname -sm");
    if (!r) return;
    auto line = r->out.substr(0, r->out.find('\n'));
    auto space = line.find(' ');
    facts.os = line.substr(0, space);
    facts.arch = space == std::string::npos ? "" : line.substr(space + 1);
    bool supported = (facts.os == "Linux" && (facts.arch == "x86_64" || facts.arch == "aarch64")) ||
                     (facts.os == "Darwin" && facts.arch == "arm64");
    if (r->status != 0 || line.empty())
      add("os/arch", CheckStatus::fail, "unknown", "'uname -sm' failed: " + r->err,
          "make sure the node runs Linux or macOS");
    else if (supported)
      add("os/arch", CheckStatus::ok, line);
    else
      add("os/arch", CheckStatus::fail, line, "clusterctl runs on Linux x86_64/aarch64 and macOS arm64, not " + line,
          "remove this node from the cluster file");
  }

  void check_memory_available() {
    bool mac = facts.os == "Darwin";
    auto r = exec("memory", mac ? "vm_stat" : "cat /proc/meminfo");
    if (!r) return;
    facts.mem_available = mac ? parse_vm_stat_available(r->out) : parse_meminfo_available(r->out);
    if (!facts.mem_available)
      add("memory", CheckStatus::fail, "unknown",
          std::string("cannot read free memory from ") + (mac ? "vm_stat" : "/proc/meminfo"),
          "check that the node is a standard Linux or macOS install");
  }

  // Free space where the node keeps its shards (the nearest folder of cache_dir that exists),
  // plus what earlier cuts of this model hold there; judged in check_disk once shares are known.
  void probe_disk() {
    if (node_.is_local()) return;  // this machine uses the controller's cut in place
    const std::string dir = shell_path(node_.cache_dir.empty() ? c_.cache_dir : node_.cache_dir);
    const std::string stem = std::filesystem::path(c_.model_path.empty() ? c_.model : c_.model_path).stem().string();
    auto r =
        exec("disk", "d=" + dir +
                         "; while [ ! -d \"$d\" ]; do d=$(dirname \"$d\"); done; df -Pk \"$d\" | tail -n 1 | "
                         "awk '{print $4}'; du -sk " +
                         dir + "/" + ssh::shell_quote(stem) + "-* 2>/dev/null | awk '{s += $1} END {print s + 0}'");
    if (!r) return;
    unsigned long long free_k = 0, ours_k = 0;
    if (r->status == 0 && std::sscanf(r->out.c_str(), "%llu %llu", &free_k, &ours_k) == 2)
      facts.disk_available = (free_k + ours_k) * 1024;
    else
      add("disk", CheckStatus::warn, "unknown", "cannot read the free disk space of " + dir + " (df): " + r->err,
          "check that df works on " + node_.name);
  }

  void check_link() {
    if (!node_.link) return;  // a one-node cluster needs no link
    const auto& link = *node_.link;
    std::vector<InterfaceState> interfaces;
    std::vector<InterfaceAddress> addresses;
    if (facts.os == "Darwin") {
      auto r = exec("link", "ifconfig -a");
      if (!r) return;
      parse_ifconfig(r->out, &interfaces, &addresses);
    } else {
      auto r = exec("link", "ip -o link show; echo @@; ip -o -4 addr show");
      if (!r) return;
      if (r->status != 0) {
        add("link", CheckStatus::fail, "unknown", "'ip' failed on the node: " + r->err, "install iproute2 on the node");
        return;
      }
      auto split = r->out.find("@@");
      interfaces = parse_ip_link(r->out.substr(0, split));
      addresses = parse_ip_addr(split == std::string::npos ? "" : r->out.substr(split));
    }
    std::string names;
    for (const auto& i : interfaces) names += (names.empty() ? "" : ", ") + i.name;
    if (link.cidr) {
      for (const auto& a : addresses)
        if (link.cidr->contains(a.address)) {
          facts.link_address = a.address;
          facts.link_interface = a.interface;
          facts.link_prefix = link.cidr->prefix;
          add("link", CheckStatus::ok, link.describe() + ": " + a.interface + " " + config::ipv4_to_string(a.address));
          return;
        }
      std::string have;
      for (const auto& a : addresses)
        have += (have.empty() ? "" : ", ") + a.interface + " " + config::ipv4_to_string(a.address);
      add("link", CheckStatus::fail, "no address in " + link.cidr->to_string(),
          node_.name + " has no interface with an address in " + link.cidr->to_string() + " (it has: " + have + ")",
          "give the link interface an address in " + link.cidr->to_string() + ", or correct 'cidr' in " + c_.file);
      return;
    }
    auto it =
        std::find_if(interfaces.begin(), interfaces.end(), [&](const auto& i) { return i.name == link.interface; });
    if (it == interfaces.end()) {
      add("link", CheckStatus::fail, "interface " + link.interface + " missing",
          node_.name + " has no interface " + link.interface + " (it has: " + names + ")",
          "connect the " + std::string(config::link_type_name(link.type)) + " link, or set 'link: interface' of " +
              node_.name + " in " + c_.file + " to one of: " + names);
      return;
    }
    if (!it->up) {
      add("link", CheckStatus::fail, link.interface + " is down",
          "interface " + link.interface + " on " + node_.name + " is not up",
          facts.os == "Darwin" ? "sudo ifconfig " + link.interface + " up"
                               : "sudo ip link set " + link.interface + " up");
      return;
    }
    for (const auto& a : addresses)
      if (a.interface == link.interface) {
        facts.link_address = a.address;
        facts.link_interface = a.interface;
        facts.link_prefix = a.prefix;
        add("link", CheckStatus::ok,
            link.describe() + ": " + config::ipv4_to_string(a.address) + "/" + std::to_string(a.prefix));
        return;
      }
    add("link", CheckStatus::fail, link.interface + " has no IPv4 address",
        "interface " + link.interface + " on " + node_.name + " has no IPv4 address, so MPI cannot use it",
        facts.os == "Darwin" ? "give it a static address (System Settings > Network > " + link.interface + " > TCP/IP)"
                             : "sudo ip addr add 10.0.77.N/24 dev " + link.interface + " (one subnet for all nodes)");
  }

  void check_worker() {
    // On this machine the default worker is the one built or installed with this clusterctl.
    const std::string worker = launch::node_worker_path(node_);
    auto r = exec("worker", kNodePath + shell_path(worker) + " --version 2>&1");
    if (!r) return;
    if (r->status == 127 || r->status == 126) {
      add("worker", CheckStatus::fail, "missing",
          node_.worker + " is not installed on " + node_.name + " (not found in PATH or not executable)",
          "install clusterctl-worker " + options_.controller_version + " on the node, or set 'worker:' in " + c_.file +
              " to its full path");
      return;
    }
    facts.worker_version = parse_version(r->out);
    if (r->status != 0 || !facts.worker_version) {
      add("worker", CheckStatus::fail, "broken",
          node_.worker + " --version failed (exit " + std::to_string(r->status) + "): " + r->out.substr(0, 200),
          "reinstall clusterctl-worker " + options_.controller_version + " on the node");
      return;
    }
    if (*facts.worker_version != options_.controller_version) {
      add("worker", CheckStatus::fail, "version " + *facts.worker_version,
          "the worker on " + node_.name + " is version " + *facts.worker_version + " but this controller is " +
              options_.controller_version,
          "install clusterctl-worker " + options_.controller_version + " on the node (versions must match exactly)");
      return;
    }
    add("worker", CheckStatus::ok, worker + " " + *facts.worker_version);
  }

  void check_mpirun() {
    auto r = exec("mpirun", std::string(kNodePath) + "command -v mpirun && mpirun --version 2>&1 | head -n1");
    if (!r) return;
    if (r->status != 0) {
      add("mpirun", CheckStatus::fail, "missing", "mpirun is not installed on " + node_.name,
          facts.os == "Darwin" ? "brew install open-mpi"
                               : "sudo apt-get install openmpi-bin (or deploy/install-deps.sh)");
      return;
    }
    std::string out = r->out;
    std::replace(out.begin(), out.end(), '\n', ' ');
    while (!out.empty() && out.back() == ' ') out.pop_back();
    add("mpirun", CheckStatus::ok, out);
  }

  const config::ClusterConfig& c_;
  const config::NodeConfig& node_;
  const PreflightOptions& options_;
  std::unique_ptr<NodeShell> shell_;
};

void check_memory(const config::ClusterConfig& c, const std::optional<ModelFootprint>& model,
                  std::vector<std::unique_ptr<NodeProbe>>& probes) {
  // Shares: from the weights, or in proportion to the free memory every node reported.
  uint64_t total_free = 0;
  bool all_known = true;
  for (size_t i = 0; i < probes.size(); ++i) {
    auto& f = probes[i]->facts;
    if (!f.mem_available) {
      all_known = false;
      continue;
    }
    // A `memory:` limit in the cluster file caps what clusterctl may use there.
    f.mem_usable = c.nodes[i].memory_limit ? std::min(*f.mem_available, c.nodes[i].memory_limit) : *f.mem_available;
    total_free += *f.mem_usable;
  }
  for (size_t i = 0; i < probes.size(); ++i) {
    auto& p = *probes[i];
    const auto& node = c.nodes[i];
    if (!p.facts.mem_usable) continue;  // unreachable or unreadable: reported already
    const uint64_t avail = *p.facts.mem_usable;
    const bool capped = node.memory_limit && node.memory_limit < *p.facts.mem_available;
    const std::string free_text = capped ? human_bytes(avail) + " allowed ('memory:' limit; " +
                                               human_bytes(*p.facts.mem_available) + " available)"
                                         : human_bytes(avail) + " available";
    if (c.weights_by_memory())
      p.facts.share = all_known && total_free ? double(avail) / double(total_free) : 0;
    else
      p.facts.share = c.weight_share(i);
    char share[16];
    std::snprintf(share, sizeof share, "%.1f%%", 100 * p.facts.share);
    if (!model || (c.weights_by_memory() && !all_known)) {
      p.results.push_back({node.name, "memory", CheckStatus::warn, free_text,
                           model ? "the split by memory needs every node's free memory" : "the model's size is unknown",
                           "fix the problems above and run doctor again"});
      continue;
    }
    uint64_t shard = uint64_t(double(model->tensor_bytes) * p.facts.share);
    uint64_t kv = model->kv_on_every_rank ? model->kv_bytes * uint64_t(std::max(node.ranks, 1))
                                          : uint64_t(double(model->kv_bytes) * p.facts.share);
    p.facts.need_bytes = shard + kv;
    p.facts.shard_bytes = shard;
    p.facts.kv_bytes = kv;
    std::string detail = free_text + ", needs " + human_bytes(p.facts.need_bytes) + " (" + share + " share: shard " +
                         human_bytes(shard) + " + KV " + human_bytes(kv) + ")";
    if (avail >= p.facts.need_bytes)
      p.results.push_back({node.name, "memory", CheckStatus::ok, detail, "", ""});
    else
      p.results.push_back(
          {node.name, "memory", CheckStatus::fail, detail,
           node.name +
               (capped ? " may use " + human_bytes(avail) + " (its 'memory:' limit)"
                       : " has " + human_bytes(avail) + " free") +
               " but its " + share + " share of the model needs " + human_bytes(p.facts.need_bytes),
           capped ? "raise 'memory:' of " + node.name + " in " + c.file +
                        ", lower its weight, add nodes, or lower 'context'"
                  : "lower the weight of " + node.name + ", add nodes, free memory on it, or lower 'context'"});
  }
}

// Each node's share of the model must fit where it keeps its shards, or the copy fills the disk.
void check_disk(const config::ClusterConfig& c, const std::optional<ModelFootprint>& model,
                std::vector<std::unique_ptr<NodeProbe>>& probes) {
  if (!model) return;
  for (size_t i = 0; i < probes.size(); ++i) {
    auto& p = *probes[i];
    const auto& node = c.nodes[i];
    if (!p.facts.disk_available || p.facts.share <= 0) continue;
    const std::string dir = node.cache_dir.empty() ? c.cache_dir : node.cache_dir;
    // The shard: its share of the tensors, and a little for its header and the checksum record.
    const uint64_t need = uint64_t(double(model->tensor_bytes) * p.facts.share) + (1 << 20);
    const uint64_t have = *p.facts.disk_available;
    const std::string detail = human_bytes(have) + " free in " + dir + ", the shard needs " + human_bytes(need);
    if (have >= need)
      p.results.push_back({node.name, "disk", CheckStatus::ok, detail, "", ""});
    else
      p.results.push_back(
          {node.name, "disk", CheckStatus::fail, detail,
           node.name + " has " + human_bytes(have) + " free in " + dir + " but its shard needs " + human_bytes(need),
           "free disk space on " + node.name + ", set its 'cache_dir' in " + c.file +
               " to a disk with room, or lower its weight"});
  }
}

}  // namespace

// The checks stopped by a signal end preflight, saying where one could not be stopped.
void throw_if_stopped(const config::ClusterConfig& c, const std::vector<std::unique_ptr<NodeProbe>>& probes) {
  if (probes.empty() || !probes[0]->stopped()) return;
  std::string running;
  for (size_t i = 0; i < probes.size(); ++i)
    if (probes[i]->still_running) running += (running.empty() ? "" : ", ") + c.nodes[i].name;
  throw ssh::SshError(ssh::SshFailure::interrupted, "the checks were interrupted",
                      running.empty() ? "the checks were stopped on every node"
                                      : "the checks could not be stopped on " + running + " and may still run there");
}

PreflightReport run_preflight(const config::ClusterConfig& c, const PreflightOptions& options) {
  PreflightReport report;
  CheckResult model_row;
  auto model = model_footprint(c, model_row);
  report.results.push_back(model_row);
  if (model) report.model = {model->path, model->tensor_bytes, model->parameters};

  std::vector<std::unique_ptr<NodeProbe>> probes;
  for (size_t i = 0; i < c.nodes.size(); ++i) probes.push_back(std::make_unique<NodeProbe>(c, i, options));
  ssh::for_each_node_in_parallel(probes.size(), [&](size_t i) { probes[i]->run(); });
  throw_if_stopped(c, probes);
  check_memory(c, model, probes);
  check_disk(c, model, probes);

  if (c.nodes.size() > 1) {
    ssh::for_each_node_in_parallel(probes.size(), [&](size_t i) {
      if (!probes[i]->facts.reachable) return;
      std::vector<std::pair<std::string, uint32_t>> peers;
      for (size_t j = 0; j < probes.size(); ++j)
        if (j != i && probes[j]->facts.link_address)
          peers.emplace_back(c.nodes[j].name, *probes[j]->facts.link_address);
      std::string link = c.nodes[i].link ? c.nodes[i].link->describe() : "the link";
      probes[i]->check_reach(peers, link);
      if (i == 0) probes[i]->check_head_ssh(peers);
    });
    throw_if_stopped(c, probes);
  }
  // Table order: node by node, each in a fixed check order.
  static const std::vector<std::string> kOrder = {"ssh",    "os/arch", "memory", "disk",    "link",
                                                  "worker", "mpirun",  "reach",  "head ssh"};
  for (auto& p : probes) {
    std::stable_sort(p->results.begin(), p->results.end(), [](const CheckResult& a, const CheckResult& b) {
      return std::find(kOrder.begin(), kOrder.end(), a.check) < std::find(kOrder.begin(), kOrder.end(), b.check);
    });
    report.results.insert(report.results.end(), p->results.begin(), p->results.end());
    report.nodes.push_back(p->facts);
  }
  return report;
}

}  // namespace clusterctl::preflight
