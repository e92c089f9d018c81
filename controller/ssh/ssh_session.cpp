#include "controller/ssh/ssh_session.h"

#include <libssh/libssh.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "controller/ssh/stop_rule.h"

namespace clusterctl::ssh {
namespace {

ssh_session S(void* p) { return static_cast<ssh_session>(p); }

void init_libssh_once() {
  static std::once_flag once;
  std::call_once(once, [] { ssh_init(); });
}

// known_hosts names a host on port 22 as "host", elsewhere as "[host]:port".
std::string known_hosts_name(const SshTarget& t) {
  return t.port == 22 ? t.host : "[" + t.host + "]:" + std::to_string(t.port);
}

// ssh-keyscan -t wants "ed25519", "rsa", "ecdsa", not the key's protocol name.
std::string keyscan_type(const std::string& key_type) {
  if (key_type == "ssh-ed25519") return "ed25519";
  if (key_type == "ssh-rsa") return "rsa";
  if (key_type.starts_with("ecdsa")) return "ecdsa";
  return "";
}

std::string keyscan_command(const SshTarget& t, const std::string& key_type) {
  std::string type = keyscan_type(key_type);
  return "ssh-keyscan -p " + std::to_string(t.port) + (type.empty() ? "" : " -t " + type) + " " + t.host + " >> " +
         shell_quote(t.known_hosts);
}

constexpr const char* kPidMarker = "@clusterctl-exec-pid:";

// Removes the wrapper's "<marker><pid>" line from the command's stderr and returns the pid
// (0 when the line has not arrived).
long take_pid_marker(std::string& err) {
  const size_t at = err.find(kPidMarker);
  if (at == std::string::npos) return 0;
  const size_t end = err.find('\n', at);
  if (end == std::string::npos) return 0;
  long pid = std::atol(err.c_str() + at + std::strlen(kPidMarker));
  err.erase(at, end + 1 - at);
  return pid;
}

}  // namespace

std::string SshTarget::address() const { return user + "@" + host + ":" + std::to_string(port); }

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

namespace {

// Connects to the node's sshd with the cluster file's settings only; a failure says which of
// refused, timed out, unreachable it was and what to check.
void connect_to_node(ssh_session s, const SshTarget& t) {
  long timeout = t.connect_timeout_s;
  int port = t.port;
  bool process_config = false;  // the cluster file is the configuration, not ~/.ssh/config
  ssh_options_set(s, SSH_OPTIONS_HOST, t.host.c_str());
  ssh_options_set(s, SSH_OPTIONS_PORT, &port);
  if (!t.user.empty()) ssh_options_set(s, SSH_OPTIONS_USER, t.user.c_str());
  ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, t.known_hosts.c_str());
  ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
  ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout);
  ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &process_config);
  // Must be set before connecting: publickey_auto only tries identities known at connect time.
  if (!t.identity.empty()) ssh_options_set(s, SSH_OPTIONS_IDENTITY, t.identity.c_str());

  if (ssh_connect(s) != SSH_OK) {
    std::string why = ssh_get_error(s);
    if (why.find("refused") != std::string::npos)
      throw SshError(SshFailure::connect,
                     "connection refused by " + t.host + ":" + std::to_string(port) + " (no sshd is listening there)",
                     "start sshd on the node, or correct 'host'/'port' in the cluster file");
    if (why.find("imeout") != std::string::npos || why.find("timed out") != std::string::npos)
      throw SshError(
          SshFailure::timeout,
          "no answer from " + t.host + ":" + std::to_string(port) + " within " + std::to_string(timeout) + " s",
          "check that the node is on and reachable at this address (ping " + t.host + ")");
    if (why.find("No route") != std::string::npos || why.find("unreachable") != std::string::npos)
      throw SshError(
          SshFailure::connect,
          t.host + ":" + std::to_string(port) + " is unreachable (" + why +
              "): the machine is off, or the address is wrong",
          "check that the node is on and that 'host' in the cluster file is its address (ping " + t.host + ")");
    throw SshError(SshFailure::connect, "cannot connect to " + t.host + ":" + std::to_string(port) + ": " + why,
                   "check 'host' and 'port' in the cluster file and that the node is on the network");
  }
}

// The node's host key must be in the cluster's known_hosts: an unknown or changed key is refused
// with the command that checks and accepts it. Returns the key's SHA-256 fingerprint.
std::string verify_host_key(ssh_session s, const SshTarget& t) {
  std::string fingerprint;
  ssh_key key = nullptr;
  if (ssh_get_server_publickey(s, &key) != SSH_OK) throw Error("libssh: no host key from " + t.host);
  unsigned char* hash = nullptr;
  size_t hash_len = 0;
  std::string key_type = ssh_key_type_to_char(ssh_key_type(key));
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hash_len) == 0) {
    char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hash_len);
    fingerprint = fp ? fp : "";
    ssh_string_free_char(fp);
    ssh_clean_pubkey_hash(&hash);
  }
  ssh_key_free(key);

  const std::string entry = known_hosts_name(t);
  const std::string check_on_node =
      "compare it with the node's own key (on the node: ssh-keygen -lf /etc/ssh/ssh_host_" +
      (keyscan_type(key_type).empty() ? "*" : keyscan_type(key_type)) + "_key.pub)";
  switch (ssh_session_is_known_server(s)) {
    case SSH_KNOWN_HOSTS_OK:
      break;
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
      throw SshError(SshFailure::host_key_unknown,
                     "host key of " + entry + " is not in " + t.known_hosts + " (" + key_type + " " + fingerprint +
                         "); refusing to trust it unchecked",
                     check_on_node + ", then accept it with: " + keyscan_command(t, key_type));
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
      throw SshError(SshFailure::host_key_changed,
                     "host key of " + entry + " CHANGED: the server now presents " + key_type + " " + fingerprint +
                         ", which does not match " + t.known_hosts +
                         " (the node was reinstalled, or someone is intercepting the connection)",
                     check_on_node + "; only if it matches, replace the old key with: ssh-keygen -R " +
                         shell_quote(entry) + " -f " + shell_quote(t.known_hosts) + " && " +
                         keyscan_command(t, key_type));
    default:
      throw SshError(SshFailure::host_key_unknown,
                     "cannot check the host key of " + entry + " against " + t.known_hosts + ": " + ssh_get_error(s),
                     "make sure " + t.known_hosts + " is a readable known_hosts file");
  }
  return fingerprint;
}

// Public-key login: the identity file and ssh-agent; a refusal names what was tried.
void log_in(ssh_session s, const SshTarget& t) {
  int rc = ssh_userauth_publickey_auto(s, nullptr, nullptr);
  if (rc != SSH_AUTH_SUCCESS) {
    std::string tried = t.identity.empty() ? "ssh-agent and ~/.ssh/id_*" : t.identity + " and ssh-agent";
    std::string pub = t.identity.empty() ? "~/.ssh/id_ed25519.pub" : t.identity + ".pub";
    throw SshError(SshFailure::auth,
                   t.address() + " refused the login (tried " + tried + ")" +
                       (rc == SSH_AUTH_ERROR ? ": " + std::string(ssh_get_error(s)) : ""),
                   "install the public key on the node: ssh-copy-id -i " + pub + " -p " + std::to_string(t.port) + " " +
                       t.user + "@" + t.host + ", or set 'identity'/'user' in the cluster file");
  }
}

}  // namespace

SshSession::SshSession(const SshTarget& target) : target_(target) {
  init_libssh_once();
  if (!target_.identity.empty() && !std::filesystem::exists(target_.identity))
    throw SshError(
        SshFailure::auth, "identity file " + target_.identity + " for " + target_.address() + " does not exist",
        "correct 'identity' in the cluster file, or create a key with ssh-keygen -t ed25519 -f " + target_.identity);
  ssh_session s = ssh_new();
  if (!s) throw Error("libssh could not allocate a session");
  session_ = s;
  try {
    connect_to_node(s, target_);
    fingerprint_ = verify_host_key(s, target_);
    log_in(s, target_);
  } catch (...) {
    ssh_disconnect(s);
    ssh_free(s);
    session_ = nullptr;
    throw;
  }
}

SshSession::~SshSession() {
  if (session_) {
    ssh_disconnect(S(session_));
    ssh_free(S(session_));
  }
}

ExecResult SshSession::exec(const std::string& command, std::chrono::milliseconds timeout,
                            const std::atomic<int>* stop) {
  ssh_session s = S(session_);
  auto fail = [&](const std::string& what) {
    return SshError(SshFailure::exec, what + " on " + target_.address() + ": " + ssh_get_error(s),
                    "check that the node is still reachable and sshd allows sessions");
  };
  ssh_channel ch = ssh_channel_new(s);
  if (!ch) throw fail("cannot open a channel");
  struct ChannelGuard {
    ssh_channel ch;
    ~ChannelGuard() {
      ssh_channel_close(ch);
      ssh_channel_free(ch);
    }
  } guard{ch};
  if (ssh_channel_open_session(ch) != SSH_OK) throw fail("cannot open a session");
  // sshd makes the session's shell a session and process-group leader; it reports its pid first
  // so that a command that overruns its time can be ended with its whole process group.
  const std::string wrapped = "echo " + std::string(kPidMarker) + "$$ >&2; " + command;
  if (ssh_channel_request_exec(ch, wrapped.c_str()) != SSH_OK) throw fail("cannot run '" + command + "'");

  ExecResult r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[16384];
  for (;;) {
    int n = ssh_channel_read_timeout(ch, buf, sizeof buf, 0, 50);
    if (n == SSH_ERROR) throw fail("reading the output of '" + command + "' failed");
    if (n > 0) r.out.append(buf, size_t(n));
    int m = ssh_channel_read_nonblocking(ch, buf, sizeof buf, 1);
    if (m == SSH_ERROR) throw fail("reading the errors of '" + command + "' failed");
    if (m > 0) r.err.append(buf, size_t(m));
    if (n <= 0 && m <= 0 && ssh_channel_is_eof(ch)) break;
    if (stop && *stop) stop_remote(SshFailure::interrupted, command, r.err, timeout);
    if (std::chrono::steady_clock::now() > deadline) stop_remote(SshFailure::timeout, command, r.err, timeout);
  }
  ssh_channel_send_eof(ch);
  r.status = ssh_channel_get_exit_status(ch);
  take_pid_marker(r.err);
  return r;
}

void SshSession::stop_remote(SshFailure kind, const std::string& command, std::string& err,
                             std::chrono::milliseconds timeout) {
  const long pid = take_pid_marker(err);
  ssh_session s = S(session_);
  ssh_channel ch = pid > 1 ? ssh_channel_new(s) : nullptr;
  bool sent = false;
  if (ch) {
    sent = ssh_channel_open_session(ch) == SSH_OK &&
           ssh_channel_request_exec(ch, stop_group_command(pid).c_str()) == SSH_OK;
    char buf[256];
    auto deadline = std::chrono::steady_clock::now() + 2 * kStopGrace;
    while (sent && !ssh_channel_is_eof(ch) && std::chrono::steady_clock::now() < deadline)
      if (ssh_channel_read_timeout(ch, buf, sizeof buf, 0, 100) == SSH_ERROR) break;
    ssh_channel_close(ch);
    ssh_channel_free(ch);
  }
  throw stopped_error(kind, "'" + command + "' on " + target_.address(), "the node", timeout, sent);
}

}  // namespace clusterctl::ssh
