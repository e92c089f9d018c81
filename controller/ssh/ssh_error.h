#pragma once
#include <string>

#include "worker/common/error.h"

namespace clusterctl::ssh {

// What went wrong, so callers (preflight, up) can tell a refused host key from a dead sshd.
enum class SshFailure { connect, host_key_unknown, host_key_changed, auth, exec, timeout, sftp, interrupted };

// An SSH failure with its cause and the fix the user should apply, kept apart so a table can
// show them in their own columns; what() joins them.
class SshError : public Error {
 public:
  SshError(SshFailure kind, std::string cause, std::string fix)
      : Error(cause + (fix.empty() ? "" : "; fix: " + fix)),
        kind_(kind),
        cause_(std::move(cause)),
        fix_(std::move(fix)) {}
  SshFailure kind() const { return kind_; }
  const std::string& cause() const { return cause_; }
  const std::string& fix() const { return fix_; }

 private:
  SshFailure kind_;
  std::string cause_;
  std::string fix_;
};

}  // namespace clusterctl::ssh
