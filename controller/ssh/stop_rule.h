#pragma once
// One rule for ending a command this controller runs, on this machine or on a node, whether it ran
// past its time or a signal interrupted the command waiting on it: its process group gets TERM, so
// that it can clean up (mpirun ends the ranks it started on every node, which takes it a moment),
// and KILL for what is still there after kStopGrace.
#include <chrono>
#include <string>

#include "controller/ssh/ssh_error.h"

namespace clusterctl::ssh {

inline constexpr std::chrono::milliseconds kStopGrace{3000};

// The rule as a POSIX shell command ending process group `pgid`, for a node.
inline std::string stop_group_command(long pgid) {
  const std::string pg = std::to_string(pgid);
  const std::string polls = std::to_string(kStopGrace.count() / 100);
  return "kill -TERM -" + pg + " 2>/dev/null; i=0; while kill -0 -" + pg + " 2>/dev/null && [ $i -lt " + polls +
         " ]; do sleep 0.1; i=$((i+1)); done; kill -KILL -" + pg + " 2>/dev/null; true";
}

// The error of `command` ("'CMD'" or "'CMD' on ADDRESS") that ran on `where` ("the node", "this
// machine") and was stopped by the rule for `kind` (timeout or interrupted); `stopped`: whether its
// process group could be ended. An interrupted command's fix starts with "stopped" where it was.
inline SshError stopped_error(SshFailure kind, const std::string& command, const std::string& where,
                              std::chrono::milliseconds timeout, bool stopped) {
  if (kind == SshFailure::interrupted)
    return SshError(kind, command + " was interrupted",
                    stopped ? "stopped on " + where : "could not be stopped on " + where + " and may still run there");
  return SshError(kind, command + " did not finish within " + std::to_string(timeout.count()) + " ms",
                  "check " + where + "'s load; the command " +
                      (stopped ? "was stopped there" : "could not be stopped and may still run there"));
}

}  // namespace clusterctl::ssh
