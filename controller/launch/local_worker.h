#pragma once
#include <string>

namespace clusterctl::launch {

// The clusterctl-worker that belongs to this clusterctl: beside the running executable (an
// install's bin dir), or in the build tree's worker/ next to controller/; else plain
// "clusterctl-worker", for PATH. Used wherever this machine starts or checks a worker.
std::string local_worker_path();

}  // namespace clusterctl::launch
