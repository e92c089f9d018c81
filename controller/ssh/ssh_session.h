#pragma once
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "controller/ssh/ssh_error.h"

namespace clusterctl::ssh {

// Where and how to log in. Host keys are checked against `known_hosts` only: an unknown or
// changed key is refused, never trusted on first use.
struct SshTarget {
  std::string host;
  int port = 22;
  std::string user;
  std::string identity;     // private key file; empty: ssh-agent, then ~/.ssh/id_*
  std::string known_hosts;  // e.g. ~/.ssh/known_hosts (expanded)
  int connect_timeout_s = 10;

  std::string address() const;  // user@host:port, for messages
};

struct ExecResult {
  std::string out;
  std::string err;
  int status = -1;  // the remote command's exit status; -1 when it reported none (killed by a signal)
};

// One authenticated SSH connection (libssh). Not copyable; one thread at a time.
class SshSession {
 public:
  // Connects, verifies the host key, authenticates. Throws SshError naming the cause and the fix.
  explicit SshSession(const SshTarget& target);
  ~SshSession();
  SshSession(const SshSession&) = delete;
  SshSession& operator=(const SshSession&) = delete;

  const SshTarget& target() const { return target_; }
  // SHA256:... fingerprint of the host key the server presented (verified).
  const std::string& host_key_fingerprint() const { return fingerprint_; }

  // Runs `command` through the remote user's (POSIX) shell and collects its output and exit
  // status. Throws SshError(timeout) when it does not finish in time, after ending the
  // command's process group on the node (TERM, then KILL), so nothing it started runs on. The
  // same when `stop` turns non-zero (a signal noted here), with SshError(interrupted).
  ExecResult exec(const std::string& command, std::chrono::milliseconds timeout = std::chrono::seconds(30),
                  const std::atomic<int>* stop = nullptr);

  // The libssh session handle, for SFTP (ssh_session is an opaque pointer type).
  void* native_handle() const { return session_; }

 private:
  // Ends the command whose pid marker is in `err` by the stop rule (stop_rule.h), over a second
  // channel, and throws its SshError for `kind` (timeout or interrupted).
  [[noreturn]] void stop_remote(SshFailure kind, const std::string& command, std::string& err,
                                std::chrono::milliseconds timeout);

  SshTarget target_;
  void* session_ = nullptr;  // ssh_session
  std::string fingerprint_;
};

// Quotes a string for a POSIX shell: 'it'\''s'.
std::string shell_quote(const std::string& s);

}  // namespace clusterctl::ssh
