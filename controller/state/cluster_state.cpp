#include "controller/state/cluster_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "worker/common/error.h"

namespace clusterctl::state {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kFormatVersion = 1;  // bumped when a field changes meaning

json node_to_json(const NodeState& n) {
  return {{"name", n.name},
          {"host", n.host},
          {"ranks", n.ranks},
          {"threads", n.threads},
          {"link_interface", n.link_interface},
          {"link_address", n.link_address},
          {"shard_paths", n.shard_paths}};
}

NodeState node_from_json(const json& j) {
  NodeState n;
  n.name = j.at("name").get<std::string>();
  n.host = j.at("host").get<std::string>();
  n.ranks = j.value("ranks", 1);
  n.threads = j.value("threads", 0);
  n.link_interface = j.value("link_interface", "");
  n.link_address = j.value("link_address", "");
  n.shard_paths = j.value("shard_paths", std::vector<std::string>{});
  return n;
}

}  // namespace

int ClusterState::total_ranks() const {
  int n = 0;
  for (const auto& node : nodes) n += node.ranks;
  return n;
}

std::string state_dir() {
  if (const char* d = std::getenv("CLUSTERCTL_STATE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return (fs::path(x) / "clusterctl").string();
  const char* home = std::getenv("HOME");
  return (fs::path(home && *home ? home : "/tmp") / ".local/state/clusterctl").string();
}

std::string state_path(const std::string& cluster) { return (fs::path(state_dir()) / (cluster + ".json")).string(); }

std::string to_json(const ClusterState& s, int indent) {
  json nodes = json::array();
  for (const auto& n : s.nodes) nodes.push_back(node_to_json(n));
  json j = {{"format", kFormatVersion},
            {"cluster", s.cluster},
            {"config_path", s.config_path},
            {"model_id", s.model_id},
            {"model_path", s.model_path},
            {"endpoint", s.endpoint},
            {"token_file", s.token_file},
            {"token_copy", s.token_copy},
            {"supervisor_pid", s.supervisor_pid},
            {"restarts", s.restarts},
            {"last_restart", s.last_restart},
            {"restarting", s.restarting},
            {"head_node", s.head_node},
            {"head_host", s.head_host},
            {"mpirun_pid", s.mpirun_pid},
            {"log_path", s.log_path},
            {"split", s.split},
            {"nodes", nodes},
            {"started_at", s.started_at}};
  return j.dump(indent);
}

ClusterState from_json(const std::string& text) {
  try {
    json j = json::parse(text);
    if (j.value("format", 0) != kFormatVersion)
      throw Error("state format " + std::to_string(j.value("format", 0)) + " is not " + std::to_string(kFormatVersion));
    ClusterState s;
    s.cluster = j.at("cluster").get<std::string>();
    s.config_path = j.value("config_path", "");
    s.model_id = j.value("model_id", "");
    s.model_path = j.value("model_path", "");
    s.endpoint = j.value("endpoint", "");
    s.token_file = j.value("token_file", "");
    s.token_copy = j.value("token_copy", "");
    s.supervisor_pid = j.value("supervisor_pid", int64_t{0});
    s.restarts = j.value("restarts", 0);
    s.last_restart = j.value("last_restart", "");
    s.restarting = j.value("restarting", "");
    s.head_node = j.value("head_node", "");
    s.head_host = j.value("head_host", "");
    s.mpirun_pid = j.value("mpirun_pid", int64_t(0));
    s.log_path = j.value("log_path", "");
    s.split = j.value("split", "");
    for (const auto& n : j.value("nodes", json::array())) s.nodes.push_back(node_from_json(n));
    s.started_at = j.value("started_at", int64_t(0));
    return s;
  } catch (const json::exception& e) {
    throw Error(std::string("not a clusterctl state file: ") + e.what());
  }
}

void write_state_file(const std::string& file_name, const std::string& text) {
  const fs::path dir = state_dir();
  std::error_code ec;
  fs::create_directories(dir, ec);
  // The state names pids that `down` signals: only this user may write (or read) it, whatever
  // the umask, so the folder is 0700 and the file 0600.
  if (!ec) fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec)
    throw Error("cannot create the state folder " + dir.string() + ": " + ec.message() +
                " (set CLUSTERCTL_STATE_DIR to a writable folder)");
  const fs::path final_path = dir / file_name;
  // Same folder, so rename() is atomic; the pid keeps two writers from sharing a temp file.
  const fs::path tmp = dir / ("." + file_name + ".tmp" + std::to_string(getpid()));
  {
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && ::fchmod(fd, 0600) == 0;
    for (size_t done = 0; ok && done < text.size();) {
      const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) done += static_cast<size_t>(n);
    }
    const int err = errno;
    if (fd >= 0 && ::close(fd) != 0) ok = false;
    if (!ok) {
      fs::remove(tmp, ec);
      throw Error("cannot write " + tmp.string() + ": " + std::strerror(err) + " (check free space and permissions)");
    }
  }
  if (std::rename(tmp.c_str(), final_path.c_str()) != 0) {
    int err = errno;
    fs::remove(tmp, ec);
    throw Error("cannot replace " + final_path.string() + ": " + std::strerror(err) + " (check permissions)");
  }
}

void save(const ClusterState& s) { write_state_file(s.cluster + ".json", to_json(s) + "\n"); }

std::optional<ClusterState> load(const std::string& name) {
  const std::string path = state_path(name);
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT || !fs::exists(path)) return std::nullopt;
    throw Error("cannot read " + path + ": " + std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return from_json(ss.str());
  } catch (const Error& e) {
    throw Error(path + ": " + e.what() + " (if no cluster '" + name + "' is running, delete the file)");
  }
}

std::vector<ClusterState> load_all() {
  std::vector<ClusterState> all;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(state_dir(), ec)) {
    const fs::path p = entry.path();
    if (p.extension() != ".json" || p.filename().string().starts_with(".")) continue;
    try {
      if (auto s = load(p.stem().string())) all.push_back(std::move(*s));
    } catch (const Error& e) {
      std::fprintf(stderr, "warning: %s\n", e.what());
    }
  }
  std::sort(all.begin(), all.end(), [](const ClusterState& a, const ClusterState& b) { return a.cluster < b.cluster; });
  return all;
}

bool remove(const std::string& name) {
  std::error_code ec;
  return fs::remove(state_path(name), ec);
}

}  // namespace clusterctl::state
