#include "controller/launch/interrupt.h"

#include "controller/ssh/ssh_error.h"

namespace clusterctl::launch {
namespace {

std::atomic<int> g_signal{0};
int g_guards = 0;  // guards alive: one inside another keeps what the outer one noted
extern "C" void note_signal(int signal) { g_signal = signal; }

}  // namespace

InterruptGuard::InterruptGuard() {
  if (g_guards++ == 0) g_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = note_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int_);
  sigaction(SIGTERM, &sa, &old_term_);
}

InterruptGuard::~InterruptGuard() {
  --g_guards;
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

const std::atomic<int>& interrupt_signal() { return g_signal; }

std::string signal_name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(signal);
}

preflight::PreflightReport run_preflight_interruptible(const config::ClusterConfig& c, const std::string& version,
                                                       const std::string& command, const std::string& after) {
  InterruptGuard interrupt_guard;
  try {
    return preflight::run_preflight(c, {version, &g_signal});
  } catch (const ssh::SshError& e) {
    if (e.kind() != ssh::SshFailure::interrupted) throw;
    throw Interrupted(g_signal, command + ": interrupted by " + signal_name(g_signal) + " during the checks; " +
                                    e.fix() + "; " + after);
  }
}

}  // namespace clusterctl::launch
