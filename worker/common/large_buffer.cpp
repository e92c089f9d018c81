#include "worker/common/large_buffer.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace clusterctl {

void FreeLargeBuffer::operator()(uint8_t* p) const noexcept { std::free(p); }

LargeBuffer allocate_large_buffer(size_t n) {
  constexpr size_t kHugePage = size_t(2) << 20;
  // Below a huge page the alignment would only waste memory.
  if (n < kHugePage) {
    auto* p = static_cast<uint8_t*>(std::malloc(n > 0 ? n : 1));
    if (!p) throw std::bad_alloc();
    return LargeBuffer(p);
  }
  const size_t rounded = (n + kHugePage - 1) / kHugePage * kHugePage;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(kHugePage, rounded));
  if (!p) throw std::bad_alloc();
#if defined(MADV_HUGEPAGE)
  ::madvise(p, rounded, MADV_HUGEPAGE);  // advisory: without THP the buffer keeps small pages
#endif
  return LargeBuffer(p);
}

}  // namespace clusterctl
