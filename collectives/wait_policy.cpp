#include "collectives/wait_policy.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <thread>

namespace clusterctl::collectives {

bool ranks_fit_cores(const CoreShare& share) {
  return int64_t(std::max(share.ranks, 1)) * std::max(share.threads, 1) <= std::max(share.cores, 1);
}

void pause_crowded_wait(int64_t waited_ns) {
  constexpr int64_t kYieldNs = 1'000'000;  // as long as the tcp transport polls where the ranks fit the cores
  if (waited_ns < kYieldNs)
    sched_yield();
  else
    std::this_thread::sleep_for(std::chrono::microseconds(20));
}

namespace {

int usable_cores() {
#ifdef __linux__
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
}

}  // namespace

CoreShare this_machine_share(int ranks_on_machine, int threads) {
  CoreShare s;
  s.ranks = ranks_on_machine;
  if (s.ranks <= 0)
    if (const char* v = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE"); v && *v) s.ranks = std::atoi(v);
  s.ranks = std::max(s.ranks, 1);
  s.threads = std::max(threads, 1);
  s.cores = usable_cores();
  return s;
}

}  // namespace clusterctl::collectives
