#pragma once
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "controller/config/cluster_config.h"
#include "controller/ssh/ssh_session.h"

namespace clusterctl::preflight {

using ssh::ExecResult;

// Runs shell commands on one node: over SSH, or directly when the node is this machine. A command
// past `timeout`, or running when `stop` turns non-zero (launch::interrupt_signal), has its process
// group ended where it runs by one rule for both (ssh/stop_rule.h: TERM, then KILL after a grace)
// and throws ssh::SshError (timeout, interrupted).
class NodeShell {
 public:
  virtual ~NodeShell() = default;
  virtual ExecResult run(const std::string& command, std::chrono::milliseconds timeout = std::chrono::seconds(15),
                         const std::atomic<int>* stop = nullptr) = 0;
  virtual std::string describe() const = 0;  // "root@10.77.1.1:22 (host key SHA256:...)" or "this machine"
};

// This machine: /bin/sh -c COMMAND, with its output captured and a timeout.
class LocalShell : public NodeShell {
 public:
  ExecResult run(const std::string& command, std::chrono::milliseconds timeout,
                 const std::atomic<int>* stop = nullptr) override;
  std::string describe() const override { return "this machine (no SSH)"; }
};

class SshShell : public NodeShell {
 public:
  explicit SshShell(const ssh::SshTarget& target) : session_(target) {}
  ExecResult run(const std::string& command, std::chrono::milliseconds timeout,
                 const std::atomic<int>* stop = nullptr) override {
    return session_.exec(command, timeout, stop);
  }
  std::string describe() const override {
    return session_.target().address() + ", host key " + session_.host_key_fingerprint();
  }
  ssh::SshSession& session() { return session_; }

 private:
  ssh::SshSession session_;
};

// Non-interactive SSH sessions get a minimal PATH: Homebrew and /usr/local are where macOS and
// hand-built installs put mpirun and the worker, /usr/sbin and /sbin `ip` and `ifconfig`. Every
// command that looks for one of them on a node starts with this, so `up` finds what preflight found.
inline constexpr const char* kNodePath =
    "PATH=\"$PATH:/usr/local/bin:/opt/homebrew/bin:/usr/sbin:/sbin\"; export PATH; ";

// A path as the node's shell must be given it: "~/x" stays expandable, everything else is quoted.
std::string shell_path(const std::string& path);

// The SSH target of a node, from the cluster file.
ssh::SshTarget ssh_target(const config::ClusterConfig& c, const config::NodeConfig& n);

// Opens the node's shell: LocalShell for a local node, else an SSH connection (throws SshError).
std::unique_ptr<NodeShell> open_node_shell(const config::ClusterConfig& c, const config::NodeConfig& n);

}  // namespace clusterctl::preflight
