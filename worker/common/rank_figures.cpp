#include "worker/common/rank_figures.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

namespace clusterctl {

uint64_t resident_bytes() {
#ifdef __linux__
  // statm's second field: resident pages. One short read, cheap enough for once a second.
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long long size = 0, resident = 0;
    const int n = std::fscanf(f, "%llu %llu", &size, &resident);
    std::fclose(f);
    if (n == 2) return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  }
#endif
  // Elsewhere the peak is what getrusage offers (bytes on macOS, KiB on Linux).
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
#ifdef __APPLE__
  return static_cast<uint64_t>(u.ru_maxrss);
#else
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;
#endif
}

}  // namespace clusterctl
