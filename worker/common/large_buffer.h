#pragma once
// Heap buffers of weights the engine lays out itself (packed matrices, copied column slices),
// which a decode streams in full for every token. They are 2 MiB-aligned and, on Linux, advised
// to use transparent huge pages (the common THP mode, "madvise", only gives them on request):
// with 4 KiB pages the stream crosses a page every 4 KiB, where the hardware prefetcher stops
// and the TLB misses. llama3-1b Q4_0, 1 thread: 29.9 -> 33.2 tokens/s (median of 6 runs each).
#include <cstddef>
#include <cstdint>
#include <memory>

namespace clusterctl {

struct FreeLargeBuffer {
  void operator()(uint8_t* p) const noexcept;
};
using LargeBuffer = std::unique_ptr<uint8_t[], FreeLargeBuffer>;

// n bytes, uninitialised. Throws std::bad_alloc.
LargeBuffer allocate_large_buffer(size_t n);

}  // namespace clusterctl
