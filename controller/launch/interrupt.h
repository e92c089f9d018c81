#pragma once
// SIGINT and SIGTERM while a command waits on a job it started on the nodes: noted instead of
// ending this process, which would leave the job running there until it ends by itself, so that
// the waiting code stops the job on every node first and then ends with one message.
#include <signal.h>

#include <atomic>
#include <string>

#include "controller/preflight/preflight.h"
#include "worker/common/error.h"

namespace clusterctl::launch {

// While one lives, SIGINT and SIGTERM set interrupt_signal() instead of ending the process (also
// where it was started ignoring them, as a script's background command is: the job on the nodes
// must not outlive it); the handlers before it come back when it ends. Constructing one where none
// lives clears the last signal noted (one inside another keeps it: a signal between two waits counts).
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// The signal the last guard noted (SIGINT or SIGTERM), 0 while none came; a NodeShell::run given
// it stops its command on the node when it turns non-zero.
const std::atomic<int>& interrupt_signal();

// "SIGINT", "SIGTERM".
std::string signal_name(int signal);

// A command stopped what it ran on the nodes because of `signal`: main prints the message and
// exits with 128 + signal, as a shell reports a command a signal ended.
class Interrupted : public Error {
 public:
  Interrupted(int signal, const std::string& what) : Error(what), signal_(signal) {}
  int signal() const { return signal_; }

 private:
  int signal_;
};

// preflight::run_preflight under an InterruptGuard: SIGINT or SIGTERM stops the checks on every
// node and throws Interrupted: "COMMAND: interrupted by SIGINT during the checks; the checks were
// stopped on every node; AFTER", AFTER saying what was not done and what to run again.
preflight::PreflightReport run_preflight_interruptible(const config::ClusterConfig& c, const std::string& version,
                                                       const std::string& command, const std::string& after);

}  // namespace clusterctl::launch
