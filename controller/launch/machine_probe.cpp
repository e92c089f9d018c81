#include "controller/launch/machine_probe.h"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace clusterctl::launch {

MachineInfo probe_machine(preflight::NodeShell& shell, const std::string& worker) {
  try {
    // Each answer on its own line, empty when unknown, so a missing one cannot shift the rest.
    const auto r = shell.run(
        std::string(preflight::kNodePath) +
            "n=$(getconf _NPROCESSORS_ONLN 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null); echo \"$n\"; "
            "id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || sysctl -n kern.bootsessionuuid 2>/dev/null); "
            "echo \"$id\"; "
            "w=$(command -v " +
            preflight::shell_path(worker) + ") && case \"$w\" in /*) echo \"$w\";; *) echo \"$PWD/$w\";; esac",
        std::chrono::seconds(15));
    return parse_machine_probe(r.out);
  } catch (const std::exception&) {
    return {};
  }
}

MachineInfo parse_machine_probe(const std::string& out) {
  std::istringstream in(out);
  std::string cores, id, worker;
  std::getline(in, cores);
  std::getline(in, id);
  std::getline(in, worker);
  MachineInfo m;
  try {
    m.cores = std::max(1, std::stoi(cores));
  } catch (const std::exception&) {
  }
  // A boot id is one short word (a UUID); anything else is not one.
  const bool word =
      id.size() <= 64 && std::none_of(id.begin(), id.end(), [](unsigned char ch) { return std::isspace(ch); });
  if (word) m.machine_id = id;
  m.worker = worker;
  return m;
}

std::string machine_key(const MachineInfo& machine, const config::NodeConfig& node) {
  return machine.machine_id.empty() ? node.name : machine.machine_id;
}

std::map<std::string, MachineLoad> machine_loads(const std::vector<config::NodeConfig>& nodes,
                                                 const std::vector<MachineInfo>& machines) {
  std::map<std::string, MachineLoad> load;
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto& l = load[machine_key(machines[i], nodes[i])];
    l.ranks += nodes[i].ranks;
    l.nodes += 1;
    l.cores = machines[i].cores;
  }
  return load;
}

}  // namespace clusterctl::launch
