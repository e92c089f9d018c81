#include "controller/launch/local_worker.h"

#include <filesystem>

#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

namespace clusterctl::launch {
namespace fs = std::filesystem;

namespace {

fs::path this_executable() {
#ifdef __APPLE__
  char buf[4096];
  uint32_t size = sizeof buf;
  if (_NSGetExecutablePath(buf, &size) == 0) {
    std::error_code ec;
    auto p = fs::canonical(buf, ec);
    if (!ec) return p;
  }
  return {};
#else
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : p;
#endif
}

}  // namespace

std::string node_worker_path(const config::NodeConfig& n) {
  return n.is_local() && n.worker == "clusterctl-worker" ? local_worker_path() : n.worker;
}

std::string local_worker_path() {
  const fs::path self = this_executable();
  if (!self.empty()) {
    // Install: one bin dir. Build tree: controller/clusterctl beside worker/clusterctl-worker.
    for (const fs::path& p : {self.parent_path() / "clusterctl-worker",
                              self.parent_path().parent_path() / "worker" / "clusterctl-worker"}) {
      std::error_code ec;
      if (fs::is_regular_file(p, ec)) return p.string();
    }
  }
  return "clusterctl-worker";
}

}  // namespace clusterctl::launch
