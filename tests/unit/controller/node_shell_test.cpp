// LocalShell ends a command that runs past its time, or that a signal interrupts, by one rule
// (ssh/stop_rule.h): TERM to its process group, so that it can clean up as mpirun ends its ranks,
// and KILL after the grace for what ignores TERM. Real /bin/sh commands on this machine.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "controller/preflight/node_shell.h"
#include "controller/ssh/stop_rule.h"

using namespace clusterctl;

namespace {

struct TempDir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("node_shell_test_" + std::to_string(::getpid()));
  TempDir() { std::filesystem::create_directories(path); }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read(const std::string& file) {
  std::stringstream s;
  s << std::ifstream(file).rdbuf();
  return s.str();
}

// A command that notes TERM in `noted` and then ends, and whose child (sleep) is in its group. It is
// stopped after a second, time enough for the shell to set its trap on a loaded machine.
std::string notes_term(const std::string& noted) {
  return "trap 'echo TERM > " + noted + "; exit 0' TERM; sleep 30 & wait";
}

// Runs `command` stopped for `kind`; returns the error and the seconds the run took.
std::pair<ssh::SshError, double> stopped_run(const std::string& command, ssh::SshFailure kind) {
  preflight::LocalShell shell;
  std::atomic<int> stop{0};
  std::thread signal;
  if (kind == ssh::SshFailure::interrupted)
    signal = std::thread([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(1000));
      stop = 2;
    });
  const auto timeout = kind == ssh::SshFailure::timeout ? std::chrono::milliseconds(1000) : std::chrono::seconds(60);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    shell.run(command, timeout, &stop);
  } catch (const ssh::SshError& e) {
    if (signal.joinable()) signal.join();
    return {e, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
  }
  if (signal.joinable()) signal.join();
  return {ssh::SshError(ssh::SshFailure::exec, "it was not stopped", ""), 0.0};
}

class LocalShellStop : public testing::TestWithParam<ssh::SshFailure> {};

TEST_P(LocalShellStop, TheCommandGetsTermAndCanCleanUp) {
  TempDir dir;
  const auto e = stopped_run(notes_term(dir.file("noted")), GetParam()).first;
  EXPECT_EQ(e.kind(), GetParam()) << e.what();
  EXPECT_EQ(read(dir.file("noted")), "TERM\n") << "the command did not get TERM";
}

TEST_P(LocalShellStop, ACommandIgnoringTermIsKilledAfterTheGrace) {
  TempDir dir;
  // TERM ignored by the shell and its child; the child notes when it ends, which KILL forbids.
  const auto [e, seconds] =
      stopped_run("trap '' TERM; sh -c 'sleep 30; echo ended > " + dir.file("ended") + "' & wait", GetParam());
  EXPECT_EQ(e.kind(), GetParam()) << e.what();
  const double grace = std::chrono::duration<double>(ssh::kStopGrace).count();
  EXPECT_GE(seconds, grace) << "KILL came before the grace was over";
  // "[s]leep" matches the command's sleep but not the shell that runs pgrep; KILL takes a moment.
  const std::string pgrep = "pgrep -f -- '[s]leep 30; echo ended > " + dir.file("ended") + "' >/dev/null";
  bool running = true;
  for (int i = 0; i < 40 && running; ++i, std::this_thread::sleep_for(std::chrono::milliseconds(50)))
    running = std::system(pgrep.c_str()) == 0;
  EXPECT_FALSE(running) << "a process of the stopped command still runs";
}

INSTANTIATE_TEST_SUITE_P(TimeoutAndInterrupt, LocalShellStop,
                         testing::Values(ssh::SshFailure::timeout, ssh::SshFailure::interrupted), [](const auto& info) {
                           return info.param == ssh::SshFailure::timeout ? "timeout" : "interrupt";
                         });

TEST(LocalShell, AStoppedCommandSaysWhyAndThatItWasStopped) {
  const auto [timed_out, s1] = stopped_run("sleep 30", ssh::SshFailure::timeout);
  EXPECT_EQ(timed_out.what(),
            std::string("'sleep 30' did not finish within 1000 ms; fix: check this machine's load; the command was "
                        "stopped there"));
  const auto [interrupted, s2] = stopped_run("sleep 30", ssh::SshFailure::interrupted);
  EXPECT_EQ(interrupted.what(), std::string("'sleep 30' was interrupted; fix: stopped on this machine"));
}

}  // namespace
