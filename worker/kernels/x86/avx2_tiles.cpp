// Prompt-processing tiles for AVX2 (filled in below).
#include "worker/kernels/kernel_table.h"

namespace clusterctl::kernels::detail {
void fill_avx2_tiles(KernelTable&) {}
}  // namespace clusterctl::kernels::detail
