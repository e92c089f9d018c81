#include "controller/launch/job_control.h"

#include <filesystem>
#include <sstream>
#include <thread>

#include "controller/launch/step_error.h"
#include "controller/ssh/channel_stream.h"
#include "controller/ssh/ssh_session.h"

namespace clusterctl::launch {
namespace {

using ssh::shell_quote;

}  // namespace

long start_detached(preflight::NodeShell& head, const std::string& node_name, const std::string& work_dir,
                    const std::string& hostfile, const std::string& hostfile_text, const std::string& command,
                    const std::string& log_path) {
  std::string script = preflight::kNodePath + std::string("mkdir -p ") + shell_quote(work_dir) + " && cd " +
                       shell_quote(work_dir) + " || exit 90; ";
  if (!hostfile_text.empty())
    script += "printf '%s' " + shell_quote(hostfile_text) + " > " + shell_quote(hostfile) + " || exit 91; ";
  script += "command -v mpirun >/dev/null 2>&1 || exit 92; ";
  // nohup: the job outlives the SSH session; setsid: its own session and process group (so
  // stopping it is one kill of the group), with its pid = mpirun's pid since the background
  // child is not a group leader and setsid execs in place.
  const std::string redirect = " > " + shell_quote(log_path) + " 2>&1 < /dev/null &";
  script += "if command -v setsid >/dev/null 2>&1; then setsid nohup " + command + redirect + " else set -m; nohup " +
            command + redirect + " fi; echo \"job-pid $!\"";
  ssh::ExecResult r;
  try {
    r = head.run(script, std::chrono::seconds(20));
  } catch (const ssh::SshError& e) {
    throw StepError(node_name, "launch", e.cause(), e.fix());
  }
  if (r.status == 90)
    throw StepError(node_name, "launch", "cannot create or enter " + work_dir + ": " + r.err,
                    "choose a writable 'cache_dir' for " + node_name + " in the cluster file");
  if (r.status == 91)
    throw StepError(node_name, "launch", "cannot write the hostfile " + hostfile + ": " + r.err,
                    "check free disk space on the node");
  if (r.status == 92)
    throw StepError(node_name, "launch", "mpirun is not installed on " + node_name,
                    "install Open MPI on the node (sudo apt-get install openmpi-bin, or brew install open-mpi)");
  const size_t at = r.out.find("job-pid ");
  const long pid = at == std::string::npos ? 0 : std::atol(r.out.c_str() + at + 8);
  if (r.status != 0 || pid <= 1)
    throw StepError(node_name, "launch",
                    "could not start mpirun (exit " + std::to_string(r.status) + "): " + r.err + r.out,
                    "run 'clusterctl doctor' on the cluster file and check the node's shell");
  return pid;
}

bool process_alive(preflight::NodeShell& shell, long pid) {
  auto r = shell.run(
      "kill -0 " + std::to_string(pid) + " 2>/dev/null && ! ps -o stat= -p " + std::to_string(pid) + " | grep -q Z",
      std::chrono::seconds(10));
  return r.status == 0;
}

bool stop_process_group(preflight::NodeShell& shell, long pgid, std::chrono::milliseconds grace) {
  const std::string pg = std::to_string(pgid);
  // mpirun forwards TERM to its ranks and ends the orteds on the other nodes; it needs a moment.
  const int tenths = int(grace.count() / 100);
  auto r =
      shell.run("kill -TERM -" + pg + " 2>/dev/null || kill -TERM " + pg + " 2>/dev/null; i=0; while [ $i -lt " +
                    std::to_string(tenths) + " ] && kill -0 -" + pg + " 2>/dev/null; do sleep 0.1; i=$((i+1)); done; " +
                    "kill -KILL -" + pg + " 2>/dev/null; sleep 0.1; kill -0 -" + pg + " 2>/dev/null && exit 1; exit 0",
                grace + std::chrono::seconds(10));
  return r.status == 0;
}

std::vector<LeftoverProcess> find_leftovers(preflight::NodeShell& shell, const JobMarks& marks) {
  // ps prints every process with its command line; the filters below keep ours. ($$ and its
  // children are this probe itself, whose command line contains the marks too.)
  auto r = shell.run("ps -eo pid=,ppid=,args=", std::chrono::seconds(15));
  std::vector<LeftoverProcess> found;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    long pid = 0, ppid = 0;
    fields >> pid >> ppid;
    std::string args;
    std::getline(fields, args);
    args.erase(0, args.find_first_not_of(' '));
    const std::string exe = args.substr(0, args.find(' '));
    const std::string base = exe.substr(exe.rfind('/') == std::string::npos ? 0 : exe.rfind('/') + 1);
    LeftoverProcess p{pid, "", args};
    // A rank: whatever the worker binary is called (a `worker:` may be a symlink or a wrapper
    // script), its command line holds this job's shard folder.
    if (!marks.worker_dir.empty() && args.find(" --model " + marks.worker_dir + " ") != std::string::npos &&
        args.find(" --serve") != std::string::npos && base != "mpirun" && base != "orted" && base != "ssh")
      p.what = "clusterctl-worker";
    else if (base == "orted" && !marks.hnp_address.empty() && args.find(marks.hnp_address) != std::string::npos)
      p.what = "orted";
    else if (marks.mpirun_pid > 0 && pid == marks.mpirun_pid && base == "mpirun")
      p.what = "mpirun";
    if (!p.what.empty()) found.push_back(std::move(p));
  }
  return found;
}

std::vector<LeftoverProcess> end_leftovers(preflight::NodeShell& shell, const JobMarks& marks) {
  auto found = find_leftovers(shell, marks);
  if (found.empty()) return found;
  std::string pids;
  for (const auto& p : found) pids += " " + std::to_string(p.pid);
  shell.run("kill -TERM" + pids + " 2>/dev/null; sleep 1; kill -KILL" + pids + " 2>/dev/null; sleep 0.2; true",
            std::chrono::seconds(15));
  return find_leftovers(shell, marks);
}

void place_token_copy(preflight::NodeShell& shell, const std::string& node_name, const std::string& local,
                      const std::string& remote) {
  auto* ssh_shell = dynamic_cast<preflight::SshShell*>(&shell);
  if (!ssh_shell) throw StepError(node_name, "copy token file", "the node is this machine", "");
  const std::filesystem::path p(remote);
  const std::string tmp = (p.parent_path() / ("." + p.filename().string() + ".tmp")).string();
  const std::string record = (p.parent_path() / ("." + p.filename().string() + ".sha256")).string();
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(local, ec);
  if (ec) throw StepError(node_name, "copy token file", "cannot read " + local + ": " + ec.message(), "");
  try {
    ssh::stream_file_to_command(ssh_shell->session(),
                                "umask 077; mkdir -p " + shell_quote(p.parent_path().string()) + " && rm -f " +
                                    shell_quote(tmp) + " " + shell_quote(record) + " && cat > " + shell_quote(tmp) +
                                    " && chmod 600 " + shell_quote(tmp) + " && mv -f " + shell_quote(tmp) + " " +
                                    shell_quote(remote),
                                local, 0, size, [](uint64_t) {});
  } catch (const ssh::SshError& e) {
    throw StepError(node_name, "copy token file", e.cause(), e.fix());
  }
}

void remove_token_copy(preflight::NodeShell& shell, const std::string& remote) {
  const std::filesystem::path p(remote);
  const std::string record = (p.parent_path() / ("." + p.filename().string() + ".sha256")).string();
  auto r = shell.run("rm -f " + shell_quote(remote) + " " + shell_quote(record), std::chrono::seconds(10));
  if (r.status != 0) throw Error(r.err.empty() ? "rm failed" : r.err);
}

std::string tail_file(preflight::NodeShell& shell, const std::string& path, int lines) {
  try {
    auto r = shell.run("tail -n " + std::to_string(lines) + " " + shell_quote(path) + " 2>/dev/null",
                       std::chrono::seconds(10));
    return r.out;
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace clusterctl::launch
